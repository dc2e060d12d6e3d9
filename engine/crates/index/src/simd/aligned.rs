//! A growable buffer whose data starts on a 64-byte (cache-line) boundary.
//!
//! glibc hands out large blocks 16-byte aligned, which makes every other 32-byte
//! AVX2 load of a row straddle two cache lines. Backing the codes with 64-byte
//! lines keeps row starts aligned whenever the row size is a multiple of 64 bytes
//! (128-d f32/f16/int8 all are).

use std::marker::PhantomData;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const LINE: usize = 64;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u16 {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
}

/// Element types an [`AlignedBuf`] may hold: plain numbers for which every bit
/// pattern (including all-zero) is a valid value.
pub trait Element: sealed::Sealed + Copy + Default + Send + Sync + 'static {}
impl Element for f32 {}
impl Element for u16 {}
impl Element for i8 {}
impl Element for i16 {}

/// A 64-byte aligned, growable buffer of `T`.
#[derive(Clone)]
pub struct AlignedBuf<T: Element> {
    lines: Vec<Line>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Element> Default for AlignedBuf<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> std::fmt::Debug for AlignedBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

impl<T: Element> AlignedBuf<T> {
    /// An empty buffer.
    pub fn new() -> Self {
        AlignedBuf {
            lines: Vec::new(),
            len: 0,
            _t: PhantomData,
        }
    }

    fn lines_for(n: usize) -> usize {
        (n * std::mem::size_of::<T>()).div_ceil(LINE)
    }

    /// Reserves room for `additional` more elements.
    pub fn reserve(&mut self, additional: usize) {
        let need = Self::lines_for(self.len + additional);
        self.lines.reserve(need.saturating_sub(self.lines.len()));
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated (capacity).
    pub fn allocated_bytes(&self) -> usize {
        self.lines.capacity() * LINE
    }

    /// Resizes to `n` elements; new elements are zero.
    pub fn resize_zeroed(&mut self, n: usize) {
        let lines = Self::lines_for(n);
        if n < self.len {
            // Zero the cut part so a later grow still reads zeros.
            let len = self.len;
            self.as_mut_slice_full(len)[n..].fill(T::default());
        }
        self.lines.resize(lines, Line([0; LINE]));
        self.len = n;
    }

    /// Appends a slice.
    pub fn extend_from_slice(&mut self, v: &[T]) {
        let old = self.len;
        self.resize_zeroed(old + v.len());
        self.as_mut_slice()[old..].copy_from_slice(v);
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: `lines` owns at least len*size_of::<T>() initialised bytes (every
        // Line is fully initialised), the pointer is 64-byte aligned (>= align_of T),
        // and T is a sealed plain-number type for which every bit pattern is valid.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr() as *const T, self.len) }
    }

    /// The elements, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let len = self.len;
        self.as_mut_slice_full(len)
    }

    fn as_mut_slice_full(&mut self, len: usize) -> &mut [T] {
        debug_assert!(len * std::mem::size_of::<T>() <= self.lines.len() * LINE);
        // SAFETY: as in as_slice; the borrow of self is unique, so no aliasing, and
        // len never exceeds the bytes held by `lines` (resize_zeroed keeps them in step).
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut T, len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_growable() {
        let mut b: AlignedBuf<f32> = AlignedBuf::new();
        b.extend_from_slice(&[1.0, 2.0, 3.0]);
        assert_eq!(b.as_slice(), &[1.0, 2.0, 3.0]);
        assert_eq!(b.as_slice().as_ptr() as usize % 64, 0);
        b.resize_zeroed(1);
        b.resize_zeroed(3);
        assert_eq!(b.as_slice(), &[1.0, 0.0, 0.0]);
        let mut c: AlignedBuf<i8> = AlignedBuf::new();
        c.extend_from_slice(&[-1; 130]);
        assert_eq!(c.len(), 130);
        assert_eq!(c.as_slice()[129], -1);
    }
}
