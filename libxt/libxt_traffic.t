:INPUT,FORWARD,OUTPUT
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.255.255.0 --name t1;=;OK
-m traffic --traffic --portconn --ipconn --netbase 193.11.176.0 --netmask 255.255.240.0 --name RSN --nointernal;=;OK
# canonical form: prefix length saved as a dotted mask, options in save order
-m traffic --traffic --netbase 10.0.0.0 --netmask 24 --name t1;-m traffic --traffic --netbase 10.0.0.0 --netmask 255.255.255.0 --name t1;OK
-m traffic --traffic --netbase 193.11.176.0 --netmask 20 --name rsn.traffic;-m traffic --traffic --netbase 193.11.176.0 --netmask 255.255.240.0 --name rsn.traffic;OK
-m traffic --name RSN --nointernal --ipconn --netmask 20 --portconn --netbase 193.11.176.0 --traffic;-m traffic --traffic --portconn --ipconn --netbase 193.11.176.0 --netmask 255.255.240.0 --name RSN --nointernal;OK
-m traffic --clearonread --hashsize 4096 --ipconn --name t2 --netmask 16 --netbase 172.20.0.0;-m traffic --ipconn --netbase 172.20.0.0 --netmask 255.255.0.0 --name t2 --hashsize 4096 --clearonread;OK
-m traffic --portconn --netbase 10.0.0.0 --netmask 255.0.0.0 --name t3 ! --nointernal;=;OK
-m traffic --traffic --ipconn --netbase 10.0.0.0 --netmask 8 --name t3b --hashsize 1 --clearonread --nointernal;-m traffic --traffic --ipconn --netbase 10.0.0.0 --netmask 255.0.0.0 --name t3b --hashsize 1 --clearonread --nointernal;OK
# hashsize is kept as given (the kernel rounds up), hex accepted like other integer options
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t4a --hashsize 1000;-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name t4a --hashsize 1000;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t4b --hashsize 0x100;-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name t4b --hashsize 256;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t4c --hashsize 4194304;-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name t4c --hashsize 4194304;OK
# edge nets: a single host, half of the address space
-m traffic --traffic --netbase 10.1.2.3 --netmask 32 --name host;-m traffic --traffic --netbase 10.1.2.3 --netmask 255.255.255.255 --name host;OK
-m traffic --traffic --netbase 128.0.0.0 --netmask 1 --name half;-m traffic --traffic --netbase 128.0.0.0 --netmask 128.0.0.0 --name half;OK
-m traffic --traffic --netbase 0.0.0.0 --netmask 128.0.0.0 --name low;=;OK
# names: the whole alphabet, 31 characters, look-alikes of the reserved suffixes
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name a.B-c_9;=;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name abcdefghijklmnopqrstuvwxyz01234;=;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name ...;=;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name xinfo;=;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name x_ipconn2;=;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name _info_;=;OK
# with other matches and a target; two tables in one rule
-p udp -m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name t5 -j ACCEPT;-p udp -m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name t5 -j ACCEPT;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name t6 -m traffic --ipconn --netbase 192.168.0.0 --netmask 255.255.0.0 --name t7;=;OK
# revision 1 on iptables: --hostprefix, saved only when it is not 32
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --hostprefix 24 --name p24;-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --hostprefix 24 --name p24;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --hostprefix 32 --name p32;-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name p32;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --hostprefix 33 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --hostprefix 7 --name t1;;FAIL
-m traffic --traffic --netbase 2001:db8:: --netmask 48 --name t1;;FAIL
# misaligned netbase
-m traffic --traffic --netbase 10.0.0.1 --netmask 24 --name t1;;FAIL
-m traffic --traffic --netbase 193.11.177.0 --netmask 255.255.240.0 --name RSN;;FAIL
# netmask: non-contiguous, out of range, /0, not a mask
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.255.0 --name t1;;FAIL
-m traffic --traffic --netbase 0.0.0.0 --netmask 0.255.255.255 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 33 --name t1;;FAIL
-m traffic --traffic --netbase 0.0.0.0 --netmask 0 --name t1;;FAIL
-m traffic --traffic --netbase 0.0.0.0 --netmask 0.0.0.0 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask -8 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask /24 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.255.255 --name t1;;FAIL
# netbase: not a dotted quad
-m traffic --traffic --netbase 10.0.0 --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0/8 --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase localhost --netmask 32 --name t1;;FAIL
# names
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name "";;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name abcdefghijklmnopqrstuvwxyz012345;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name a/b;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name .;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name ..;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name a:b;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name RSN_ipconn;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name RSN_portconn;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name RSN_info;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name _info;;FAIL
# hashsize
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --hashsize 0;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --hashsize 4194305;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --hashsize 99999999999;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --hashsize -1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --hashsize many;;FAIL
# nothing to count, mandatory options missing
-m traffic --netbase 10.0.0.0 --netmask 8 --name t1 --nointernal;;FAIL
-m traffic --traffic --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8;;FAIL
-m traffic;;FAIL
# duplicates, inversion of a plain option, unknown option, missing argument
-m traffic --traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --name t2;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netbase 10.0.0.0 --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --nointernal ! --nointernal;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --clearonread --clearonread;;FAIL
-m traffic ! --traffic --netbase 10.0.0.0 --netmask 8 --name t1;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1 --count;;FAIL
-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name;;FAIL
*raw
:PREROUTING,OUTPUT
-m traffic --traffic --portconn --ipconn --netbase 193.11.176.0 --netmask 20 --name RSN --nointernal;-m traffic --traffic --portconn --ipconn --netbase 193.11.176.0 --netmask 255.255.240.0 --name RSN --nointernal;OK
-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.0.0 --name raw1 ! --nointernal;=;OK
-m traffic --traffic --netbase 10.0.0.1 --netmask 255.0.0.0 --name raw1;;FAIL
