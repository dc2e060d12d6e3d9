//! Per-row tags and the filters matched against them.

/// A row's tag: tenant in the low 16 bits, modality in bits 16..24, the top 8
/// bits free for the caller. One `u32` per row keeps the filter check to a load,
/// an AND and a compare, done only for rows that already beat the heap.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Tag(pub u32);

impl Tag {
    /// A tag for a tenant and a modality.
    pub fn new(tenant: u16, modality: u8) -> Tag {
        Tag(tenant as u32 | (modality as u32) << 16)
    }

    /// The tenant part.
    pub fn tenant(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// The modality part.
    pub fn modality(self) -> u8 {
        ((self.0 >> 16) & 0xff) as u8
    }
}

/// Keeps rows whose `tag & mask == value`. Deleted rows are always excluded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// Bits of the tag that are compared.
    pub mask: u32,
    /// Required value of those bits.
    pub value: u32,
}

impl Filter {
    /// Every live row.
    pub const ALL: Filter = Filter { mask: 0, value: 0 };

    /// Rows of one tenant.
    pub fn tenant(t: u16) -> Filter {
        Filter {
            mask: 0xffff,
            value: t as u32,
        }
    }

    /// Rows of one modality.
    pub fn modality(m: u8) -> Filter {
        Filter {
            mask: 0xff << 16,
            value: (m as u32) << 16,
        }
    }

    /// Both conditions (on disjoint bits).
    pub fn and(self, other: Filter) -> Filter {
        Filter {
            mask: self.mask | other.mask,
            value: self.value | other.value,
        }
    }

    /// Whether a tag passes.
    #[inline]
    pub fn matches(self, tag: Tag) -> bool {
        tag.0 & self.mask == self.value
    }
}
