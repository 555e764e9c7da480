:INPUT,FORWARD,OUTPUT
# revision 1 on ip6tables: --hostprefix is always saved, --netmask as a prefix length
-m traffic --traffic --netbase 2001:db8:: --netmask 48 --name v6a;-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 64 --name v6a;OK
-m traffic --traffic --ipconn --netbase 2001:db8:: --netmask 48 --hostprefix 56 --name v6b;=;OK
-m traffic --traffic --netbase 2001:db8:: --netmask ffff:ffff:ffff:: --name v6c;-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 64 --name v6c;OK
-m traffic --traffic --netbase 2001:db8::1 --netmask 128 --hostprefix 128 --name host6;=;OK
-m traffic --traffic --netbase 8000:: --netmask 1 --hostprefix 128 --name half6;=;OK
-m traffic --name v6d ! --nointernal --hashsize 4096 --clearonread --hostprefix 60 --netmask 56 --netbase 2001:db8:100:: --portconn --traffic --ipconn;-m traffic --traffic --portconn --ipconn --netbase 2001:db8:100:: --netmask 56 --hostprefix 60 --name v6d --hashsize 4096 --clearonread ! --nointernal;OK
-m traffic --traffic --netbase fe80:: --netmask 64 --hostprefix 128 --name ll;=;OK
-m traffic --traffic --netbase 2001:DB8:0:0:0:0:0:0 --netmask 32 --name up;-m traffic --traffic --netbase 2001:db8:: --netmask 32 --hostprefix 64 --name up;OK
-m traffic --portconn --netbase fd00:: --netmask 8 --hostprefix 48 --name ula --nointernal;=;OK
-p udp -m traffic --traffic --netbase 2001:db8:: --netmask 64 --name v6e -j ACCEPT;-p udp -m traffic --traffic --netbase 2001:db8:: --netmask 64 --hostprefix 64 --name v6e -j ACCEPT;OK
# IPv4 values on ip6tables
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 255.255.0.0 --name t1;;FAIL
# misaligned base, /0, out of range, non-contiguous, not an address
-m traffic --traffic --netbase 2001:db8::1 --netmask 48 --name t1;;FAIL
-m traffic --traffic --netbase :: --netmask 0 --name t1;;FAIL
-m traffic --traffic --netbase :: --netmask :: --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 129 --name t1;;FAIL
-m traffic --traffic --netbase :: --netmask ffff::ffff --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8::/48 --netmask 48 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8::g --netmask 48 --name t1;;FAIL
# host prefix: longer than an address, shorter than the net, 0, missing for a net longer than /64
-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 129 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 40 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 0 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 96 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 56 --hostprefix 64 --name t1;;FAIL
# the rest as on iptables
-m traffic --netbase 2001:db8:: --netmask 48 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 48 --name a/b;;FAIL
*raw
:PREROUTING,OUTPUT
-m traffic --traffic --portconn --ipconn --netbase 2001:db8:: --netmask 48 --hostprefix 56 --name RSN6 --nointernal;=;OK
