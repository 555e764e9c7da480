# Sourced by scripts/check-patches.sh and scripts/iptables-promisc.sh: both need Debian's
# iptables 1.8.9 source package, which needs a deb-src entry (Debian 12 ships none).

DEB_SRC_FILE=/etc/apt/sources.list.d/xttraffic-deb-src.sources

# have_deb_src: whether apt has any deb-src entry.
have_deb_src() {
	grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null
}

# deb_src_entry: the entry to write to $DEB_SRC_FILE (bookworm main).
deb_src_entry() {
	printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm' \
		'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
}
