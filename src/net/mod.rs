//! Networking: netlink (veth, bridge, addresses, routes), IPAM, NAT and published ports.
