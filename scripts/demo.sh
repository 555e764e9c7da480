#!/usr/bin/env bash
# npm run demo: boots the VM and shows xt_traffic counting real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/vm.sh bash scripts/demo-guest.sh
