//! What the fuzz targets share: how an input is laid out, and the seeded choices a target makes
//! from it (where to cut the data, in which order to send deferred answers).
//!
//! Every input is `[options] [seed] data...`: one byte of options that each target reads its
//! own way (which limits, which application), one byte that seeds the target's random choices,
//! and the data under test. Two leading bytes rather than `arbitrary`-style structure, so that a
//! seed of the corpus is a valid request with two bytes in front, written by hand, and so that
//! libFuzzer's mutations of the data stay mutations of the data. The choices are drawn from a
//! small generator seeded by the seed byte and the data's length, so the same input always makes
//! the same choices (a crash reproduces) while a flip of the seed byte explores other splits.

/// A fuzz input, taken apart.
pub struct Input<'a> {
    /// The options byte (0 when the input is empty).
    pub options: u8,
    /// The generator for the target's choices.
    pub rng: Rng,
    /// The bytes under test.
    pub data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `input` into options, seed and data; missing bytes count as zero.
    pub fn new(input: &'a [u8]) -> Input<'a> {
        let options = input.first().copied().unwrap_or(0);
        let seed = input.get(1).copied().unwrap_or(0);
        let data = input.get(2..).unwrap_or(&[]);
        Input { options, rng: Rng::new(u64::from(seed) << 32 | data.len() as u64), data }
    }
}

/// splitmix64: a few lines, no dependency, and good enough to scatter cut points.
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// Sorted, distinct positions that cut `0..len` into pieces, `0` and `len` included: one
    /// byte at a time (every few bytes past a kilobyte, so that a long input stays a fast
    /// case), every few bytes, or at a few random points.
    pub fn cuts(&mut self, len: usize) -> Vec<usize> {
        let mut at: Vec<usize> = match self.below(4) {
            0 => (0..=len).step_by(1 + len / 1024).collect(),
            1 => (0..=len).step_by(2 + self.below(15)).collect(),
            _ => (0..1 + self.below(32)).map(|_| self.below(len + 1)).collect(),
        };
        at.push(0);
        at.push(len);
        at.sort_unstable();
        at.dedup();
        at
    }
}

/// The pieces of `data` between consecutive `cuts` (from [`Rng::cuts`]).
pub fn pieces<'a>(data: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    cuts.windows(2).map(move |w| &data[w[0]..w[1]])
}

/// FNV-1a: a short fingerprint of a request's body, so that an answer shows which bytes the
/// application was given without echoing them.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A token character (RFC 9110 §5.6.2): what a method, a field name or an extension name is
/// made of. Written here from the RFC rather than taken from `flash_common::parse`: the targets
/// use it as an oracle, and an oracle that shares the checked code's helpers shares its bugs.
pub fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// A control byte other than HTAB, or DEL: what no field value may hold.
pub fn is_ctl(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}
