#!/bin/sh
# Regenerate the captures in this directory from the rulesets beside them (root needed).
# Each ruleset is loaded into its own throw-away network namespace:
#   X.nft    -> nft -f            -> X.json       (nft -j list ruleset)
#   X.rules  -> iptables-restore  -> X.save       (iptables-save) + X.nft.json
#   X.rules6 -> ip6tables-restore -> X.save6      (ip6tables-save) + X.nft.json
# Debian 12: nftables 1.0.6, iptables 1.8.9 (nf_tables backend).
set -eu
cd "$(dirname "$0")"
for f in *.nft *.rules *.rules6; do
    ns="ccfwtest-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
    ip netns add "$ns"
    trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
    base="${f%.*}"
    case "$f" in
        *.nft) ip netns exec "$ns" nft -f "$f"
               ip netns exec "$ns" nft -j list ruleset > "$base.json" ;;
        *.rules) ip netns exec "$ns" iptables-restore < "$f"
                 ip netns exec "$ns" iptables-save > "$base.save"
                 ip netns exec "$ns" nft -j list ruleset > "$base.nft.json" ;;
        *.rules6) ip netns exec "$ns" ip6tables-restore < "$f"
                  ip netns exec "$ns" ip6tables-save > "$base.save6"
                  ip netns exec "$ns" nft -j list ruleset > "$base.nft.json" ;;
    esac
    ip netns del "$ns"
    trap - EXIT
done
