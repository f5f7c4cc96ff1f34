//! A few values remembered in the order they came, for memos that see the same values again
//! in the same order.

use serde_json::Value;

/// A few values remembered in the order they came, looked up from where the last one found
/// was: values that come in the same order every time (the conditions of one status after
/// another's) are found at the first try.
pub struct Ring<T> {
    items: Vec<T>,
    /// Where the next lookup starts, and the next value goes once full.
    next: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Ring<T> {
        Ring::new()
    }
}

impl<T> Ring<T> {
    pub const fn new() -> Ring<T> {
        Ring {
            items: Vec::new(),
            next: 0,
        }
    }

    /// How many values are remembered.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The first value from `next` on (round the ring) that `is` accepts.
    pub fn find(&mut self, is: impl Fn(&T) -> bool) -> Option<&T> {
        let n = self.items.len();
        let at = (0..n)
            .map(|d| (self.next + d) % n)
            .find(|&i| is(&self.items[i]))?;
        self.next = (at + 1) % n;
        Some(&self.items[at])
    }

    /// Remembers `t`, in place of the one at `next` once `cap` are remembered.
    pub fn put(&mut self, t: T, cap: usize) {
        if self.items.len() < cap {
            self.items.push(t);
            self.next = self.items.len() % cap;
        } else {
            let at = self.next % self.items.len();
            self.items[at] = t;
            self.next = (at + 1) % self.items.len();
        }
    }
}

/// Whether `a` and `b` are the same JSON written the same way: equal, and their maps' members
/// in the same order.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ak, av), (bk, bv))| ak == bk && same_json(av, bv))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_json(a, b))
        }
        _ => a == b,
    }
}
