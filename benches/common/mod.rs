//! Traffic shapes that more than one bench sends.

use std::net::Ipv4Addr;

/// The `k`th client address of a spread in 10.0.0.0/8: consecutive `k` give unrelated addresses,
/// as consecutive requests to a public service come from unrelated clients, so an index keyed
/// by the address takes them all over rather than one after the other.
pub(crate) fn spread_client(k: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (k.wrapping_mul(2_654_435_761) >> 8))
}
