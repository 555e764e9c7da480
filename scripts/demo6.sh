#!/usr/bin/env bash
# npm run demo6: boots the VM and shows xt_traffic counting real IPv6 traffic per /56.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/vm.sh bash scripts/demo6-guest.sh
