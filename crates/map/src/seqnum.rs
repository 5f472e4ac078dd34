//! Kinesis sequence numbers in AWS's shape: this module owns the only
//! conversion between a record's position (shard, per-shard sequence index,
//! arrival time) and the decimal string clients see, so that SDKs, tools and
//! other emulators' tests that inspect sequence numbers find the same layout
//! AWS uses.
//!
//! A sequence number is the decimal form (56 digits) of a number whose
//! hexadecimal form is exactly 47 digits, most significant first:
//!
//! | hex digits | field                                        |
//! |-----------:|----------------------------------------------|
//! | 1          | `2`                                          |
//! | 9          | shard creation time, epoch seconds           |
//! | 1          | low nibble of the shard index                |
//! | 16         | `seq_ix`, the per-shard sequence index       |
//! | 2          | "byte1", always `00`                         |
//! | 9          | record arrival time, epoch seconds           |
//! | 8          | shard index                                  |
//! | 1          | `2` (version)                                |
//!
//! Because `seq_ix` sits above the arrival time, numbers of one shard are
//! strictly increasing exactly when `seq_ix` is, whatever the clock did; the
//! storage engine hands out `seq_ix` strictly increasing per shard.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use num_bigint::BigUint;

/// Largest seq_ix; a closed shard's EndingSequenceNumber uses it (AWS's maximum-index form).
pub const SEQ_IX_MAX: u64 = 0x7fff_ffff_ffff_ffff;
/// Largest epoch seconds that fit in 9 hex digits.
pub const EPOCH_SECS_MAX: u64 = 0xf_ffff_ffff;

/// Number of hex digits in a sequence number's layout.
const LAYOUT_LEN_HEX_DIGITS: usize = 47;
/// Longest decimal string `parse` looks at (the accepted pattern is `0|[1-9]\d{0,128}`).
const DECIMAL_MAX_LEN_DIGITS: usize = 129;

/// A decoded sequence number.
///
/// Ordering (`Ord`) equals the numeric order of the decimal values: it
/// compares `(shard_created_secs, shard_index & 0xf, seq_ix, arrival_secs,
/// shard_index)` lexicographically, which is the field order of the
/// fixed-width layout. Within one shard this is the order of `seq_ix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SequenceNumber {
    /// Shard creation time in epoch seconds; at most [`EPOCH_SECS_MAX`].
    pub shard_created_secs: u64,
    /// Index of the shard (the number in `shardId-000000000007`).
    pub shard_index: u32,
    /// Per-shard sequence index; at most [`SEQ_IX_MAX`].
    pub seq_ix: u64,
    /// Record arrival time in epoch seconds; at most [`EPOCH_SECS_MAX`].
    pub arrival_secs: u64,
}

/// Why a string is not a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeqParseError {
    #[error("not a decimal number")]
    NotDecimal,
    #[error("value is not of the Kinesis sequence-number layout")]
    BadLayout,
}

impl SequenceNumber {
    /// Panics (assert!, stays on in release) if a field is out of range: callers construct these from trusted state.
    pub fn new(shard_created_secs: u64, shard_index: u32, seq_ix: u64, arrival_secs: u64) -> Self {
        assert!(
            shard_created_secs <= EPOCH_SECS_MAX,
            "shard_created_secs {shard_created_secs} exceeds {EPOCH_SECS_MAX}"
        );
        assert!(seq_ix <= SEQ_IX_MAX, "seq_ix {seq_ix} exceeds {SEQ_IX_MAX}");
        assert!(
            arrival_secs <= EPOCH_SECS_MAX,
            "arrival_secs {arrival_secs} exceeds {EPOCH_SECS_MAX}"
        );
        Self {
            shard_created_secs,
            shard_index,
            seq_ix,
            arrival_secs,
        }
    }

    /// The closed-shard ending sequence number form (seq_ix = SEQ_IX_MAX).
    ///
    /// It is greater than every other sequence number of the same shard.
    pub fn ending(shard_created_secs: u64, shard_index: u32, arrival_secs: u64) -> Self {
        Self::new(shard_created_secs, shard_index, SEQ_IX_MAX, arrival_secs)
    }

    /// The decimal string clients see (computed on three 64-bit limbs, no big-integer
    /// allocation: it runs once per record written).
    pub fn to_decimal(&self) -> String {
        const TEN_POW_19: u128 = 10_000_000_000_000_000_000;
        let mut limbs = self.to_limbs();
        // Base-10^19 digits, least significant first (186 bits need at most 3).
        let mut chunks = [0u64; 4];
        let mut n = 0;
        loop {
            let mut rem: u128 = 0;
            for limb in limbs.iter_mut() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / TEN_POW_19) as u64;
                rem = cur % TEN_POW_19;
            }
            chunks[n] = rem as u64;
            n += 1;
            if limbs == [0; 3] || n == chunks.len() {
                break;
            }
        }
        let mut out = String::with_capacity(19 * n);
        push_digits(&mut out, chunks[n - 1], 0);
        for c in chunks[..n - 1].iter().rev() {
            push_digits(&mut out, *c, 19);
        }
        out
    }

    /// The layout as a 192-bit number, most significant limb first.
    fn to_limbs(self) -> [u64; 3] {
        fn push(acc: &mut [u64; 3], v: u64, bits: u32) {
            debug_assert!(bits > 0 && bits < 64);
            acc[0] = (acc[0] << bits) | (acc[1] >> (64 - bits));
            acc[1] = (acc[1] << bits) | (acc[2] >> (64 - bits));
            acc[2] = (acc[2] << bits) | v;
        }
        let mut acc = [0, 0, 2u64];
        push(&mut acc, self.shard_created_secs, 36);
        push(&mut acc, u64::from(self.shard_index & 0xf), 4);
        // seq_ix is a whole limb: shift by 64 in two steps.
        push(&mut acc, self.seq_ix >> 32, 32);
        push(&mut acc, self.seq_ix & 0xffff_ffff, 32);
        push(&mut acc, 0, 8); // byte1, always 00
        push(&mut acc, self.arrival_secs, 36);
        push(&mut acc, u64::from(self.shard_index), 32);
        push(&mut acc, 2, 4);
        acc
    }

    /// Parses a decimal sequence number string, as received from clients.
    ///
    /// Accepts only `0|[1-9]\d{0,128}` (else [`SeqParseError::NotDecimal`]) and
    /// then only values of the layout described in the module docs (else
    /// [`SeqParseError::BadLayout`]). Never panics.
    pub fn parse(s: &str) -> Result<Self, SeqParseError> {
        let value = decimal(s)?;
        let hex = value.to_str_radix(16);
        if hex.len() != LAYOUT_LEN_HEX_DIGITS {
            return Err(SeqParseError::BadLayout);
        }
        // `hex` is 47 ASCII hex digits; `get` keeps even a wrong offset from panicking.
        let field = |start: usize, len: usize| -> Result<u64, SeqParseError> {
            let digits = hex
                .get(start..start + len)
                .ok_or(SeqParseError::BadLayout)?;
            u64::from_str_radix(digits, 16).map_err(|_| SeqParseError::BadLayout)
        };
        let lead = field(0, 1)?;
        let shard_created_secs = field(1, 9)?;
        let nibble = field(10, 1)?;
        let seq_ix = field(11, 16)?;
        let byte1 = field(27, 2)?;
        let arrival_secs = field(29, 9)?;
        let shard_index = field(38, 8)?;
        let version = field(46, 1)?;
        let shard_index = u32::try_from(shard_index).map_err(|_| SeqParseError::BadLayout)?;
        if lead != 2
            || version != 2
            || byte1 != 0
            || nibble != u64::from(shard_index & 0xf)
            || seq_ix > SEQ_IX_MAX
        {
            return Err(SeqParseError::BadLayout);
        }
        // 9 hex digits can never exceed EPOCH_SECS_MAX, so `new` cannot panic here.
        Ok(Self::new(
            shard_created_secs,
            shard_index,
            seq_ix,
            arrival_secs,
        ))
    }

    /// The layout as a big integer: the reference `to_decimal` is tested against.
    #[cfg(test)]
    fn to_biguint(self) -> BigUint {
        let mut value = BigUint::from(2u8);
        value = (value << 36u32) | BigUint::from(self.shard_created_secs);
        value = (value << 4u32) | BigUint::from(self.shard_index & 0xf);
        value = (value << 64u32) | BigUint::from(self.seq_ix);
        value <<= 8u32; // byte1, always 00
        value = (value << 36u32) | BigUint::from(self.arrival_secs);
        value = (value << 32u32) | BigUint::from(self.shard_index);
        (value << 4u32) | BigUint::from(2u8)
    }

    /// The layout's fields, most significant first.
    fn order_key(&self) -> (u64, u32, u64, u64, u32) {
        (
            self.shard_created_secs,
            self.shard_index & 0xf,
            self.seq_ix,
            self.arrival_secs,
            self.shard_index,
        )
    }
}

/// The first shard creation time (epoch seconds, `0x3bb2cc3d8`) AWS was recorded refusing in a
/// sequence number it reads (kinesalite `test/getShardIterator.js`, "sequence number with large
/// date"); every smaller one it read.
pub const FOREIGN_CREATED_SECS_LIMIT: u64 = 16_025_175_000;

/// What AWS reads from a sequence number a client sends, before it checks that the number is
/// one of this shard's: AWS knows more layouts than the one it issues today, and answers by
/// what they encode ("It encodes shardId-…"). Kinesalite's tests recorded the answers; the
/// layouts below are the ones those answers imply.
///
/// - **Version 0**, a number below 2^128 (a number below 2^124 is read as 2^124 more): 32 hex
///   digits, `1`, 9 digits of shard creation seconds, 2 of an unknown byte, 16 of a random part,
///   4 of the shard index.
/// - **Version 1**, 47 hex digits starting `2` and ending `1`: creation seconds at digits
///   1–9, arrival seconds at 13–21, the shard index in the last 8 before the version.
/// - **Version 2**, the layout issued today (module docs), ending `2`; the shard-index field is
///   read as a signed 32-bit number (`shardId--02147483648`), and a sequence index above
///   [`SEQ_IX_MAX`] is refused.
///
/// In versions 0 and 2 a creation time from [`FOREIGN_CREATED_SECS_LIMIT`] on is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Foreign {
    pub version: u8,
    pub shard_created_secs: u64,
    /// The shard index the number encodes (negative when version 2's top bit is set).
    pub shard_index: i64,
    /// Arrival seconds (versions 1 and 2).
    pub arrival_secs: Option<u64>,
}

impl Foreign {
    /// Reads `s` as AWS does (see the type's docs); `Err` where AWS answers "is invalid".
    pub fn read(s: &str) -> Result<Foreign, SeqParseError> {
        let value = decimal(s)?;
        let bump = BigUint::from(1u8) << 124u32;
        let value = if value < bump { value + bump } else { value };
        let hex = value.to_str_radix(16);
        let field = |start: usize, len: usize| -> Result<u64, SeqParseError> {
            let digits = hex
                .get(start..start + len)
                .ok_or(SeqParseError::BadLayout)?;
            u64::from_str_radix(digits, 16).map_err(|_| SeqParseError::BadLayout)
        };
        let created = |secs: u64| {
            if secs < FOREIGN_CREATED_SECS_LIMIT {
                Ok(secs)
            } else {
                Err(SeqParseError::BadLayout)
            }
        };
        match (hex.len(), hex.as_bytes()) {
            (32, _) => Ok(Foreign {
                version: 0,
                shard_created_secs: created(field(1, 9)?)?,
                shard_index: field(28, 4)? as i64,
                arrival_secs: None,
            }),
            (LAYOUT_LEN_HEX_DIGITS, [b'2', .., b'1']) => Ok(Foreign {
                version: 1,
                shard_created_secs: field(1, 9)?,
                shard_index: field(38, 8)? as i64,
                arrival_secs: Some(field(13, 9)?),
            }),
            (LAYOUT_LEN_HEX_DIGITS, [b'2', .., b'2']) => {
                if field(11, 16)? > SEQ_IX_MAX {
                    return Err(SeqParseError::BadLayout);
                }
                // The field is 8 hex digits, so it fits a u32; AWS reads it as a Java int.
                let index = u32::try_from(field(38, 8)?).map_err(|_| SeqParseError::BadLayout)?;
                Ok(Foreign {
                    version: 2,
                    shard_created_secs: created(field(1, 9)?)?,
                    shard_index: i64::from(index as i32),
                    arrival_secs: Some(field(29, 9)?),
                })
            }
            _ => Err(SeqParseError::BadLayout),
        }
    }

    /// The shard id this number encodes, as AWS prints it: `shardId-` and 12 digits, or for a
    /// negative index `shardId--` and 11.
    pub fn shard_id_text(&self) -> String {
        if self.shard_index < 0 {
            format!("shardId--{:011}", self.shard_index.unsigned_abs())
        } else {
            format!("shardId-{:012}", self.shard_index)
        }
    }
}

/// A decimal string of the accepted pattern (`0|[1-9]\d{0,128}`) as a number.
fn decimal(s: &str) -> Result<BigUint, SeqParseError> {
    let bytes = s.as_bytes();
    let is_decimal = match bytes {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        _ => bytes.len() <= DECIMAL_MAX_LEN_DIGITS && bytes.iter().all(u8::is_ascii_digit),
    };
    if !is_decimal {
        return Err(SeqParseError::NotDecimal);
    }
    BigUint::parse_bytes(bytes, 10).ok_or(SeqParseError::NotDecimal)
}

impl Ord for SequenceNumber {
    /// Numeric order of the decimal values (see the type's docs).
    fn cmp(&self, other: &Self) -> Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

impl FromStr for SequenceNumber {
    type Err = SeqParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Formats the sequence numbers of a shard's consecutive records (a GetRecords answer) faster
/// than one [`SequenceNumber::to_decimal`] each: the next record's number differs from the last
/// by `2^80` (its `seq_ix` is one more), plus `2^36` per second its arrival is later, so its
/// decimal digits are the last ones with that added, digit by digit. Anything else (another
/// shard, a gap, a clock step back) is formatted in full.
#[derive(Debug, Default, Clone)]
pub struct DecimalRun {
    prev: Option<SequenceNumber>,
    /// ASCII digits (kept as bytes to add to in place).
    digits: Vec<u8>,
}

/// `2^80` in decimal: the step of `seq_ix` in the layout.
const SEQ_IX_STEP: &[u8] = b"1208925819614629174706176";
/// Arrival steps (seconds) added digit-wise; `(2^27 - 1) * 2^36` still fits a u64.
const ARRIVAL_STEP_MAX: u64 = (1 << 27) - 1;

impl DecimalRun {
    pub fn format(&mut self, n: &SequenceNumber) -> &str {
        if !self.step_to(n) {
            self.digits.clear();
            self.digits.extend_from_slice(n.to_decimal().as_bytes());
        }
        self.prev = Some(*n);
        // Only ASCII digits are ever written, so this never falls back.
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// Moves the digits from `prev` to `n` by addition, if `n` is the next record.
    fn step_to(&mut self, n: &SequenceNumber) -> bool {
        let Some(p) = self.prev else { return false };
        let arrival_step = n.arrival_secs.wrapping_sub(p.arrival_secs);
        if p.shard_created_secs != n.shard_created_secs
            || p.shard_index != n.shard_index
            || p.seq_ix.checked_add(1) != Some(n.seq_ix)
            || n.arrival_secs < p.arrival_secs
            || arrival_step > ARRIVAL_STEP_MAX
        {
            return false;
        }
        let digits = &mut self.digits;
        let stepped = if digits.len() == SEQ_IX_STEP_WORDS.len() * 8 {
            add_decimal_words(digits, &SEQ_IX_STEP_WORDS)
        } else {
            add_decimal(digits, SEQ_IX_STEP)
        };
        if !stepped {
            return false;
        }
        if arrival_step > 0 {
            let mut buf = itoa::Buffer::new();
            if !add_decimal(digits, buf.format(arrival_step << 36).as_bytes()) {
                return false;
            }
        }
        true
    }
}

/// Decimal digits of every sequence number (`2·16^46 ≤ n < 3·16^46`).
const DECIMAL_DIGITS: usize = 56;

/// [`SEQ_IX_STEP`] as digit values (0–9), padded to [`DECIMAL_DIGITS`], eight per word,
/// most significant first.
const SEQ_IX_STEP_WORDS: [u64; DECIMAL_DIGITS / 8] = {
    let mut words = [0u64; DECIMAL_DIGITS / 8];
    let pad = DECIMAL_DIGITS - SEQ_IX_STEP.len();
    let mut i = 0;
    while i < SEQ_IX_STEP.len() {
        let at = pad + i;
        words[at / 8] |= ((SEQ_IX_STEP[i] - b'0') as u64) << (8 * (7 - at % 8));
        i += 1;
    }
    words
};

/// [`add_decimal`] eight digits at a time, for an addend given as digit-value words as long as
/// `digits` (`digits.len() == 8 * addend.len()`). In each word every byte is biased by 246, so
/// a byte's sum reaches 256 (and carries into the next byte, as in decimal) exactly when the
/// digits sum to 10 or more; the bytes that did not carry then drop the bias.
fn add_decimal_words(digits: &mut [u8], addend: &[u64]) -> bool {
    const ZEROS: u64 = u64::from_ne_bytes([b'0'; 8]);
    const BIAS: u64 = u64::from_ne_bytes([246; 8]);
    const LOW_BITS: u64 = u64::from_ne_bytes([1; 8]);
    if digits.len() != addend.len() * 8 {
        return false;
    }
    let mut carry = false;
    for (chunk, b) in digits.chunks_exact_mut(8).rev().zip(addend.iter().rev()) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let a = u64::from_be_bytes(word).wrapping_sub(ZEROS);
        let b = b + BIAS;
        let (s1, c1) = a.overflowing_add(b);
        let (s, c2) = s1.overflowing_add(u64::from(carry));
        carry = c1 || c2;
        // Bit 8(i+1) of s ^ a ^ b is the carry out of byte i; the top byte's is `carry`.
        let carried = (((s ^ a ^ b) >> 8) & (LOW_BITS >> 8)) | (u64::from(carry) << 56);
        let digits_of = s - (!carried & LOW_BITS) * 246;
        chunk.copy_from_slice(&(digits_of + ZEROS).to_be_bytes());
    }
    !carry
}

/// Adds the decimal `addend` to the decimal `digits` in place. False (and `digits` spoiled) if
/// the sum needs more digits.
fn add_decimal(digits: &mut [u8], addend: &[u8]) -> bool {
    let Some(split) = digits.len().checked_sub(addend.len()) else {
        return false;
    };
    let mut carry = 0u8;
    for (d, a) in digits[split..].iter_mut().rev().zip(addend.iter().rev()) {
        let v = (*d - b'0') + (a - b'0') + carry;
        carry = u8::from(v >= 10);
        *d = b'0' + v - 10 * carry;
    }
    for d in digits[..split].iter_mut().rev() {
        if carry == 0 {
            break;
        }
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            carry = 0;
        }
    }
    carry == 0
}

/// Appends `v` in decimal, zero-padded to `width` digits (no padding when 0).
fn push_digits(out: &mut String, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Epoch seconds: mostly a few small values (so fields tie often), else any.
    fn secs() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..3, 0..=EPOCH_SECS_MAX]
    }

    fn shard_index() -> impl Strategy<Value = u32> {
        prop_oneof![0u32..3, Just(0x10), Just(0x11), any::<u32>()]
    }

    fn seq_ix() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..3, Just(SEQ_IX_MAX), 0..=SEQ_IX_MAX]
    }

    fn seqnum() -> impl Strategy<Value = SequenceNumber> {
        (secs(), shard_index(), seq_ix(), secs())
            .prop_map(|(c, i, s, a)| SequenceNumber::new(c, i, s, a))
    }

    fn hex_of(n: &SequenceNumber) -> String {
        BigUint::parse_bytes(n.to_decimal().as_bytes(), 10)
            .unwrap()
            .to_str_radix(16)
    }

    fn decimal_of_hex(hex: &str) -> String {
        BigUint::parse_bytes(hex.as_bytes(), 16)
            .unwrap()
            .to_str_radix(10)
    }

    /// Hex of a valid number with created 0x0542050cd, seq_ix 0x157d, arrival 0x05420bb34, shard 0x13.
    const VALID_HEX: &str = "20542050cd3000000000000157d0005420bb34000000132";

    proptest! {
        #[test]
        fn decimal_matches_the_big_integer(x in seqnum()) {
            prop_assert_eq!(x.to_decimal(), x.to_biguint().to_str_radix(10));
        }

        /// A run of numbers (mostly each the next record, sometimes a later second, a gap, a
        /// clock step back or another shard) formats exactly as one by one.
        #[test]
        fn a_decimal_run_formats_as_one_by_one(
            start in seqnum(),
            steps in proptest::collection::vec(
                (prop_oneof![4 => Just(1u64), 1 => 0u64..3, 1 => any::<u64>()],
                 prop_oneof![4 => Just(0i64), 2 => 1i64..3, 1 => -2i64..0, 1 => any::<i64>()],
                 prop_oneof![9 => Just(false), 1 => Just(true)]),
                0..40),
        ) {
            let mut run = DecimalRun::default();
            let mut n = start;
            prop_assert_eq!(run.format(&n), n.to_decimal());
            for (seq_step, arrival_step, other_shard) in steps {
                n = SequenceNumber::new(
                    n.shard_created_secs,
                    if other_shard { n.shard_index.wrapping_add(1) } else { n.shard_index },
                    n.seq_ix.wrapping_add(seq_step) % (SEQ_IX_MAX + 1),
                    n.arrival_secs.wrapping_add_signed(arrival_step) % (EPOCH_SECS_MAX + 1),
                );
                prop_assert_eq!(run.format(&n), n.to_decimal());
            }
        }

        #[test]
        fn word_addition_is_digit_addition(
            a in proptest::collection::vec(0u8..10, 1..5),
            b in proptest::collection::vec(0u8..10, 1..5),
            nines in 0usize..40,
        ) {
            // Digits heavy in nines, so carries run far.
            let mut digits: Vec<u8> = a.iter().chain(std::iter::repeat_n(&9, nines)).map(|d| b'0' + d).collect();
            digits.resize(digits.len().div_ceil(8) * 8, b'9');
            let mut addend = vec![b'0'; digits.len()];
            let len = b.len().min(addend.len());
            let tail = addend.len() - len;
            for (slot, d) in addend[tail..].iter_mut().zip(&b) {
                *slot = b'0' + d;
            }
            let words: Vec<u64> = addend
                .chunks(8)
                .map(|c| u64::from_be_bytes(c.try_into().unwrap()) - u64::from_ne_bytes([b'0'; 8]))
                .collect();
            let mut by_words = digits.clone();
            let mut by_digits = digits.clone();
            let ok_words = add_decimal_words(&mut by_words, &words);
            let ok_digits = add_decimal(&mut by_digits, &addend);
            prop_assert_eq!(ok_words, ok_digits);
            if ok_words {
                prop_assert_eq!(by_words, by_digits);
            }
        }

        #[test]
        fn decimal_addition_is_addition(a in any::<u64>(), b in any::<u64>(), width in 0usize..24) {
            let mut digits = format!("{a:0width$}").into_bytes();
            let ok = add_decimal(&mut digits, b.to_string().as_bytes());
            let sum = u128::from(a) + u128::from(b);
            let want = format!("{sum:0width$}");
            if want.len() == digits.len() {
                prop_assert!(ok);
                prop_assert_eq!(String::from_utf8(digits).unwrap(), want);
            } else {
                prop_assert!(!ok);
            }
        }

        #[test]
        fn round_trip(x in seqnum()) {
            let s = x.to_decimal();
            prop_assert_eq!(SequenceNumber::parse(&s), Ok(x));
            prop_assert_eq!(s.parse::<SequenceNumber>(), Ok(x));
            prop_assert_eq!(x.to_string(), s);
        }

        #[test]
        fn order_is_numeric_order(x in seqnum(), y in seqnum()) {
            let bx = BigUint::parse_bytes(x.to_decimal().as_bytes(), 10).unwrap();
            let by = BigUint::parse_bytes(y.to_decimal().as_bytes(), 10).unwrap();
            prop_assert_eq!(x.cmp(&y), bx.cmp(&by));
            prop_assert_eq!(x.partial_cmp(&y), Some(bx.cmp(&by)));
            prop_assert_eq!(x == y, bx == by);
        }

        #[test]
        fn increasing_seq_ix_increases_regardless_of_arrival(
            created in secs(),
            index in shard_index(),
            s1 in 0..SEQ_IX_MAX,
            a1 in secs(),
            a2 in secs(),
            step in 1u64..1000,
        ) {
            let s2 = s1.saturating_add(step).min(SEQ_IX_MAX);
            let x = SequenceNumber::new(created, index, s1, a1);
            let y = SequenceNumber::new(created, index, s2, a2);
            prop_assert!(x < y);
            let bx = BigUint::parse_bytes(x.to_decimal().as_bytes(), 10).unwrap();
            let by = BigUint::parse_bytes(y.to_decimal().as_bytes(), 10).unwrap();
            prop_assert!(bx < by);
        }

        #[test]
        fn shape_matches_layout(x in seqnum()) {
            let dec = x.to_decimal();
            prop_assert_eq!(dec.len(), 56);
            let hex = hex_of(&x);
            prop_assert_eq!(hex.len(), 47);
            prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(&hex[0..1], "2");
            prop_assert_eq!(&hex[1..10], format!("{:09x}", x.shard_created_secs));
            prop_assert_eq!(&hex[10..11], format!("{:x}", x.shard_index & 0xf));
            prop_assert_eq!(&hex[11..27], format!("{:016x}", x.seq_ix));
            prop_assert_eq!(&hex[27..29], "00");
            prop_assert_eq!(&hex[29..38], format!("{:09x}", x.arrival_secs));
            prop_assert_eq!(&hex[38..46], format!("{:08x}", x.shard_index));
            prop_assert_eq!(&hex[46..47], "2");
        }

        #[test]
        fn ending_is_greater_than_any_other_of_the_shard(
            created in secs(),
            index in shard_index(),
            s in 0..SEQ_IX_MAX,
            a_end in secs(),
            a in secs(),
        ) {
            let end = SequenceNumber::ending(created, index, a_end);
            prop_assert_eq!(end.seq_ix, SEQ_IX_MAX);
            let other = SequenceNumber::new(created, index, s, a);
            prop_assert!(end > other);
            prop_assert_eq!(SequenceNumber::parse(&end.to_decimal()), Ok(end));
        }

        #[test]
        fn parse_never_panics_any_string(s in ".*") {
            let _ = SequenceNumber::parse(&s);
        }

        #[test]
        fn parse_never_panics_digits(s in "[0-9]{0,140}") {
            let r = SequenceNumber::parse(&s);
            if let Ok(x) = r {
                prop_assert_eq!(x.to_decimal(), s);
            }
        }

        /// Any 47-hex-digit value parses iff the layout rules hold.
        #[test]
        fn parse_accepts_exactly_the_layout(hex in "[1-3][0-9a-f]{45}[1-3]") {
            let dec = decimal_of_hex(&hex);
            let b = hex.as_bytes();
            let nibble_ok = b[10] == b[45];
            let ok = b[0] == b'2'
                && b[46] == b'2'
                && &hex[27..29] == "00"
                && nibble_ok
                && u64::from_str_radix(&hex[11..27], 16).unwrap() <= SEQ_IX_MAX;
            match SequenceNumber::parse(&dec) {
                Ok(x) => {
                    prop_assert!(ok);
                    prop_assert_eq!(hex_of(&x), hex);
                }
                Err(e) => {
                    prop_assert!(!ok);
                    prop_assert_eq!(e, SeqParseError::BadLayout);
                }
            }
        }
    }

    #[test]
    fn aws_docs_example() {
        let s = "49543463076548007577105092703039560359975228518395019266";
        let x = SequenceNumber::parse(s).unwrap();
        // 2014-09-22 16:39:41 UTC: 16335 days after 1970-01-01, plus 16:39:41.
        let created = 16_335 * 86_400 + 16 * 3600 + 39 * 60 + 41;
        assert_eq!(created, 1_411_403_981);
        // 2014-09-23 00:13:40 UTC: the next day, plus 00:13:40.
        let arrival = 16_336 * 86_400 + 13 * 60 + 40;
        assert_eq!(arrival, 1_411_431_220);
        assert_eq!(x, SequenceNumber::new(created, 0, 5501, arrival));
        assert_eq!(x.to_decimal(), s);
        assert_eq!(
            hex_of(&x),
            "20542050cd0000000000000157d0005420bb34000000002"
        );
    }

    #[test]
    fn days_since_epoch_for_2014_09_22() {
        // Check the 16335 used above: years 1970..2014 plus Jan..Aug 2014 plus 21 days.
        let leap_years = (1970..2014)
            .filter(|y| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
            .count() as u64;
        let years = 44 * 365 + leap_years;
        let months = 31 + 28 + 31 + 30 + 31 + 30 + 31 + 31;
        assert_eq!(years + months + 21, 16_335);
    }

    #[test]
    fn rejects_non_decimal() {
        for s in [
            "",
            "00",
            "0123",
            "049543463076548007577105092703039560359975228518395019266",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "1e5",
            "0x20",
            "abc",
            "１２３",
            "4954346307654800757710509270303956035997522851839501926a",
        ] {
            assert_eq!(
                SequenceNumber::parse(s),
                Err(SeqParseError::NotDecimal),
                "{s:?}"
            );
        }
        let too_long = format!("1{}", "0".repeat(129));
        assert_eq!(too_long.len(), 130);
        assert_eq!(
            SequenceNumber::parse(&too_long),
            Err(SeqParseError::NotDecimal)
        );
        let longest = format!("1{}", "0".repeat(128));
        assert_eq!(
            SequenceNumber::parse(&longest),
            Err(SeqParseError::BadLayout)
        );
    }

    #[test]
    fn rejects_wrong_layout() {
        assert!(SequenceNumber::parse(&decimal_of_hex(VALID_HEX)).is_ok());
        let with = |pos: usize, digits: &str| {
            let mut h = VALID_HEX.to_string();
            h.replace_range(pos..pos + digits.len(), digits);
            h
        };
        let bad = [
            "0".to_string(),
            "1".to_string(),
            "2".to_string(),
            // 46 and 48 hex digits.
            VALID_HEX[1..].to_string(),
            format!("{VALID_HEX}2"),
            // Leading digit not 2.
            with(0, "1"),
            with(0, "3"),
            with(0, "f"),
            // Version not 2.
            with(46, "0"),
            with(46, "3"),
            // byte1 not 00.
            with(27, "01"),
            with(27, "80"),
            // Nibble differs from the shard index's low nibble.
            with(10, "2"),
            with(10, "0"),
            // seq_ix above SEQ_IX_MAX.
            with(11, "8000000000000000"),
            with(11, "ffffffffffffffff"),
        ];
        for hex in bad {
            assert_eq!(
                SequenceNumber::parse(&decimal_of_hex(&hex)),
                Err(SeqParseError::BadLayout),
                "{hex}"
            );
        }
        // The largest seq_ix itself is fine.
        assert!(SequenceNumber::parse(&decimal_of_hex(&with(11, "7fffffffffffffff"))).is_ok());
    }

    #[test]
    fn extremes_round_trip() {
        for x in [
            SequenceNumber::new(0, 0, 0, 0),
            SequenceNumber::new(EPOCH_SECS_MAX, u32::MAX, SEQ_IX_MAX, EPOCH_SECS_MAX),
            SequenceNumber::ending(EPOCH_SECS_MAX, u32::MAX, EPOCH_SECS_MAX),
        ] {
            assert_eq!(SequenceNumber::parse(&x.to_decimal()), Ok(x));
        }
    }

    #[test]
    #[should_panic]
    fn new_rejects_seq_ix_above_max() {
        let _ = SequenceNumber::new(0, 0, SEQ_IX_MAX + 1, 0);
    }

    #[test]
    #[should_panic]
    fn new_rejects_created_above_max() {
        let _ = SequenceNumber::new(EPOCH_SECS_MAX + 1, 0, 0, 0);
    }

    #[test]
    #[should_panic]
    fn new_rejects_arrival_above_max() {
        let _ = SequenceNumber::new(0, 0, 0, EPOCH_SECS_MAX + 1);
    }

    /// The numbers kinesalite's tests sent to AWS, and what AWS's answers show it read.
    #[test]
    fn foreign_numbers_read_as_recorded() {
        let read = |hex: &str| Foreign::read(&decimal_of_hex(hex));
        let small = Foreign::read("5").unwrap();
        assert_eq!((small.version, small.shard_index), (0, 5));
        assert_eq!(small.shard_id_text(), "shardId-000000000005");
        assert_eq!(Foreign::read("0").unwrap().shard_index, 0);
        // "sequence number with large date": invalid.
        assert!(read("13bb2cc3d80000000000000000000000").is_err());
        assert!(read("13bb2cc3d70000000000000000000000").is_ok());
        // "8 in index": the sequence index's top bit set, invalid.
        assert!(read("20000000000800000000000000000000000000000000002").is_err());
        // "8 near end": a negative shard index.
        let negative = read("20000000000000000000000000000000000000800000002").unwrap();
        assert_eq!(negative.shard_id_text(), "shardId--02147483648");
        // "SequenceNumberForOrdering all f": the creation time is too large.
        assert!(read("2ffffffffff7fffffffffffffff000000000007fffffff2").is_err());
        // "all 0 with version 1": read.
        let v1 = read("20000000000000000000000000000000000000000000001").unwrap();
        assert_eq!(
            (v1.version, v1.shard_index, v1.arrival_secs),
            (1, 0, Some(0))
        );
        // Neither layout.
        assert!(read("20000000000000000000000000000000000000000000003").is_err());
        assert!(read("1000000000000000000000000000000000").is_err());
        assert!(Foreign::read("012").is_err());
    }

    proptest! {
        /// What Levee issues, AWS's reading finds again (creation times below the limit).
        #[test]
        fn issued_numbers_read_as_version_2(
            c in 0..FOREIGN_CREATED_SECS_LIMIT,
            i in 0u32..=i32::MAX as u32,
            s in seq_ix(),
            a in secs(),
        ) {
            let n = SequenceNumber::new(c, i, s, a);
            let f = Foreign::read(&n.to_decimal()).unwrap();
            prop_assert_eq!(f, Foreign {
                version: 2,
                shard_created_secs: c,
                shard_index: i64::from(i),
                arrival_secs: Some(a),
            });
        }
    }
}
