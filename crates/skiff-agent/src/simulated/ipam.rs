//! Pod IPs from a node's `/24` pod CIDR, as the host-local IPAM plugin hands them out: `.0`
//! is the network, `.1` the node's bridge, `.255` broadcast, so pods get `.2` … `.254`. The
//! allocator is a 256-bit map (32 bytes a node) and hands out the lowest free address.

/// The addresses of one `/24`, by host octet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ipam {
    used: [u64; 4],
}

/// The first and last host octets pods get.
const FIRST: u8 = 2;
const LAST: u8 = 254;

impl Ipam {
    fn bit(octet: u8) -> (usize, u64) {
        ((octet / 64) as usize, 1u64 << (octet % 64))
    }

    pub fn is_used(&self, octet: u8) -> bool {
        let (w, b) = Self::bit(octet);
        self.used[w] & b != 0
    }

    /// The lowest free host octet, now taken; `None` when the range is full.
    pub fn allocate(&mut self) -> Option<u8> {
        let octet = (FIRST..=LAST).find(|o| !self.is_used(*o))?;
        self.reserve(octet);
        Some(octet)
    }

    /// Marks `octet` taken (an address found in a pod's status after a restart). False if it
    /// was taken already or is not a pod address.
    pub fn reserve(&mut self, octet: u8) -> bool {
        if !(FIRST..=LAST).contains(&octet) || self.is_used(octet) {
            return false;
        }
        let (w, b) = Self::bit(octet);
        self.used[w] |= b;
        true
    }

    pub fn release(&mut self, octet: u8) {
        let (w, b) = Self::bit(octet);
        self.used[w] &= !b;
    }

    pub fn in_use(&self) -> usize {
        self.used.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_lowest_free_reuses_released_and_fills_up() {
        let mut ipam = Ipam::default();
        assert_eq!(ipam.allocate(), Some(2));
        assert_eq!(ipam.allocate(), Some(3));
        assert!(ipam.reserve(5));
        assert!(!ipam.reserve(5), "already taken");
        assert!(!ipam.reserve(1), "the bridge's address");
        assert!(!ipam.reserve(255), "broadcast");
        assert_eq!(ipam.allocate(), Some(4));
        assert_eq!(ipam.allocate(), Some(6));
        ipam.release(3);
        assert_eq!(ipam.allocate(), Some(3));
        assert_eq!(ipam.in_use(), 5);
        while ipam.allocate().is_some() {}
        assert_eq!(ipam.in_use(), 253);
        ipam.release(200);
        assert_eq!(ipam.allocate(), Some(200));
        assert_eq!(ipam.allocate(), None);
    }
}
