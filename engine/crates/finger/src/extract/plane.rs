//! Small image containers and filters shared by the extraction stages.

/// A dense row-major 2-D array.
#[derive(Debug, Clone)]
pub(crate) struct Plane<T> {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) data: Vec<T>,
}

impl<T: Copy + Default> Plane<T> {
    pub(crate) fn new(width: usize, height: usize) -> Self {
        Plane {
            width,
            height,
            data: vec![T::default(); width * height],
        }
    }
    #[inline]
    pub(crate) fn at(&self, x: usize, y: usize) -> T {
        self.data[y * self.width + x]
    }
    #[inline]
    pub(crate) fn set(&mut self, x: usize, y: usize, v: T) {
        self.data[y * self.width + x] = v;
    }
    /// Value at signed coordinates, `None` outside.
    #[inline]
    pub(crate) fn get(&self, x: isize, y: isize) -> Option<T> {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            None
        } else {
            Some(self.data[y as usize * self.width + x as usize])
        }
    }
}

/// Box mean over a (2r+1)² window, clamped at the borders (the window
/// shrinks rather than reading padding, so borders are not darkened).
/// Separable running sums in f64: O(1) per pixel whatever the radius.
pub(crate) fn box_mean(src: &Plane<f32>, r: usize) -> Plane<f32> {
    let (w, h) = (src.width, src.height);
    let mut tmp = Plane::<f32>::new(w, h);
    let mut prefix = vec![0f64; w + 1];
    for y in 0..h {
        let row = &src.data[y * w..(y + 1) * w];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + f64::from(row[x]);
        }
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r + 1).min(w);
            tmp.data[y * w + x] = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
        }
    }
    // Vertical pass row by row with running column sums: walking columns
    // would stride through memory and was the slowest part of extraction.
    let mut out = Plane::<f32>::new(w, h);
    let mut col = vec![0f64; w];
    let mut lo = 0usize;
    let mut hi = 0usize; // rows [lo, hi) are in `col`
    for y in 0..h {
        let want_lo = y.saturating_sub(r);
        let want_hi = (y + r + 1).min(h);
        while hi < want_hi {
            for (c, v) in col.iter_mut().zip(&tmp.data[hi * w..(hi + 1) * w]) {
                *c += f64::from(*v);
            }
            hi += 1;
        }
        while lo < want_lo {
            for (c, v) in col.iter_mut().zip(&tmp.data[lo * w..(lo + 1) * w]) {
                *c -= f64::from(*v);
            }
            lo += 1;
        }
        let inv = 1.0 / (hi - lo) as f64;
        for (o, c) in out.data[y * w..(y + 1) * w].iter_mut().zip(&col) {
            *o = (*c * inv) as f32;
        }
    }
    out
}

/// Bilinear sample with edge clamping.
#[inline]
pub(crate) fn bilinear(p: &Plane<f32>, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (p.width - 1) as f32);
    let y = y.clamp(0.0, (p.height - 1) as f32);
    let x0 = x.floor() as usize;
    let y0 = y.floor() as usize;
    let x1 = (x0 + 1).min(p.width - 1);
    let y1 = (y0 + 1).min(p.height - 1);
    let fx = x - x0 as f32;
    let fy = y - y0 as f32;
    let a = p.at(x0, y0) * (1.0 - fx) + p.at(x1, y0) * fx;
    let b = p.at(x0, y1) * (1.0 - fx) + p.at(x1, y1) * fx;
    a * (1.0 - fy) + b * fy
}
