//! Streaming band-limited sample-rate conversion (8 kHz telephone audio to the 16 kHz the VAD and
//! speech recognisers expect).
//!
//! [`Resampler`] is a rational polyphase FIR resampler: conceptually it inserts `up - 1` zeros
//! between input samples, low-pass filters at the lower of the two Nyquist frequencies with a
//! Kaiser-windowed sinc, and keeps every `down`-th sample. Only the non-zero products are computed.
//!
//! # Timing
//!
//! The filter is linear phase and centred: output sample `n` is the band-limited value of the
//! input signal at time `n / output_rate` seconds from stream start, exactly. A centred filter
//! needs a little look-ahead, so after each [`Resampler::process`] call the last
//! [`Resampler::held_back`] output samples (8.4 ms from 8 to 16 kHz) are not yet produced; the first 20 ms
//! frame therefore yields 20 ms minus that, every later 20 ms frame yields exactly 20 ms, and
//! [`Resampler::flush`] returns the held-back tail at the end of the call. Counting output samples
//! thus gives exact times from call start, with no offset to subtract.

use std::f64::consts::PI;

/// Stopband attenuation of the anti-imaging / anti-aliasing filter, in dB.
const STOPBAND_ATTENUATION_DB: f64 = 80.0;
/// Band edges as fractions of the lower Nyquist frequency, when upsampling. Images of a tone at
/// `f` land at `2 * nyquist - f`, so with the stopband from 1.025 nyquist every tone up to
/// 0.975 nyquist (3.9 kHz for 8 kHz input) has its image fully suppressed, while the passband
/// runs to 3.8 kHz, beyond the 3.4 kHz telephone band.
const UPSAMPLE_EDGES: (f64, f64) = (0.95, 1.025);
/// Band edges when downsampling: the stopband starts at the new Nyquist frequency, so nothing
/// aliases.
const DOWNSAMPLE_EDGES: (f64, f64) = (0.9, 1.0);

/// Error building a [`Resampler`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResampleError {
    /// One of the rates was zero.
    #[error("sample rates must be non-zero (got {from_hz} Hz to {to_hz} Hz)")]
    ZeroRate {
        /// Input rate.
        from_hz: u32,
        /// Output rate.
        to_hz: u32,
    },
    /// The reduced ratio needs an impractically long filter (e.g. 44100 to 16000 would need 441
    /// phases); telephone rates never do.
    #[error("resampling ratio {up}/{down} is too complex (from {from_hz} Hz to {to_hz} Hz)")]
    RatioTooComplex {
        /// Input rate.
        from_hz: u32,
        /// Output rate.
        to_hz: u32,
        /// Reduced upsampling factor.
        up: u32,
        /// Reduced downsampling factor.
        down: u32,
    },
}

/// A streaming polyphase resampler for one audio stream (one call leg).
///
/// Feed it frames of any size with [`process`](Self::process); call [`flush`](Self::flush) once
/// at the end of the stream. See the [module docs](self) for the timing guarantees.
#[derive(Debug, Clone)]
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    up: u64,
    down: u64,
    /// Index of the centre tap at the upsampled rate: the filter's group delay.
    centre: u64,
    /// Taps per phase.
    taps_per_phase: usize,
    /// `up` phases of `taps_per_phase` taps each, every phase reversed so that an output sample
    /// is a dot product with a contiguous run of input history.
    phases: Vec<f32>,
    /// Input samples from absolute input index `history_start` onwards. Indices below zero are
    /// the silence before the stream started.
    history: Vec<f32>,
    history_start: i64,
    /// Input samples received so far.
    input_len: u64,
    /// Index of the next output sample to produce.
    output_len: u64,
}

impl Resampler {
    /// Creates a resampler from `from_hz` to `to_hz`. Equal rates give an exact pass-through.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        if from_hz == 0 || to_hz == 0 {
            return Err(ResampleError::ZeroRate { from_hz, to_hz });
        }
        let divisor = gcd(from_hz, to_hz);
        let (up, down) = (to_hz / divisor, from_hz / divisor);
        if up > 64 || down > 64 {
            return Err(ResampleError::RatioTooComplex { from_hz, to_hz, up, down });
        }
        let (up, down) = (u64::from(up), u64::from(down));
        let taps = if up == down { vec![1.0] } else { design_lowpass(from_hz, to_hz, up) };
        let centre = (taps.len() as u64 - 1) / 2;
        let taps_per_phase = taps.len().div_ceil(up as usize);
        // Phase p holds taps p, p + up, p + 2 up, ... in reverse order, left-padded with zeros.
        let mut phases = vec![0.0f32; up as usize * taps_per_phase];
        for (index, &tap) in taps.iter().enumerate() {
            let phase = index % up as usize;
            let q = index / up as usize;
            phases[phase * taps_per_phase + (taps_per_phase - 1 - q)] = tap as f32;
        }
        let mut resampler = Self {
            from_hz,
            to_hz,
            up,
            down,
            centre,
            taps_per_phase,
            phases,
            history: Vec::new(),
            history_start: 0,
            input_len: 0,
            output_len: 0,
        };
        resampler.reset();
        Ok(resampler)
    }

    /// Input rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Output samples that [`process`](Self::process) holds back for look-ahead, once the stream
    /// is longer than the filter. They come out with later input or from [`flush`](Self::flush).
    pub fn held_back(&self) -> usize {
        (self.total_output_len() - self.output_len) as usize
    }

    /// Total output samples the stream so far maps to: `ceil(input_len * to_hz / from_hz)`.
    fn total_output_len(&self) -> u64 {
        (self.input_len * self.up).div_ceil(self.down)
    }

    /// Resamples `input` (the next samples of the stream, any length), appending every output
    /// sample that is now fully determined to `output`. Returns how many were appended.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) -> usize {
        self.history.extend_from_slice(input);
        self.input_len += input.len() as u64;
        let produced = self.produce(self.input_len, u64::MAX, output);
        self.trim_history();
        produced
    }

    /// Like [`process`](Self::process) for 16-bit linear PCM (slin, or G.711 after decoding).
    pub fn process_i16(&mut self, input: &[i16], output: &mut Vec<f32>) -> usize {
        self.history.extend(input.iter().map(|&sample| i16_to_f32(sample)));
        self.input_len += input.len() as u64;
        let produced = self.produce(self.input_len, u64::MAX, output);
        self.trim_history();
        produced
    }

    /// Ends the stream: appends the held-back output samples, treating the signal after the last
    /// input sample as silence, so that the whole stream yields exactly
    /// `ceil(input_len * to_hz / from_hz)` samples. The resampler is then reset for a new stream.
    pub fn flush(&mut self, output: &mut Vec<f32>) -> usize {
        let target = self.total_output_len();
        // Enough trailing silence to cover the look-ahead of the last output sample.
        let pad = (self.centre / self.up + 2) as usize;
        self.history.resize(self.history.len() + pad, 0.0);
        let produced = self.produce(self.input_len + pad as u64, target, output);
        self.reset();
        produced
    }

    /// Forgets the stream so far, as if newly created.
    pub fn reset(&mut self) {
        self.history.clear();
        // The taps_per_phase - 1 samples before the stream starts are silence.
        let lead = self.taps_per_phase - 1;
        self.history.resize(lead, 0.0);
        self.history_start = -(lead as i64);
        self.input_len = 0;
        self.output_len = 0;
    }

    /// Produces outputs while their newest input sample is below `available` and their index is
    /// below `limit`.
    fn produce(&mut self, available: u64, limit: u64, output: &mut Vec<f32>) -> usize {
        let mut produced = 0;
        let taps = self.taps_per_phase;
        while self.output_len < limit {
            let t = self.output_len * self.down + self.centre;
            let newest = t / self.up;
            if newest >= available {
                break;
            }
            let phase = (t % self.up) as usize;
            let coefficients = &self.phases[phase * taps..(phase + 1) * taps];
            // The window of input is [newest - taps + 1, newest], relative to history_start.
            let first = (newest as i64 - (taps as i64 - 1) - self.history_start) as usize;
            let window = &self.history[first..first + taps];
            output.push(dot(coefficients, window));
            self.output_len += 1;
            produced += 1;
        }
        produced
    }

    /// Drops history no future output sample needs.
    fn trim_history(&mut self) {
        let t = self.output_len * self.down + self.centre;
        let oldest_needed = (t / self.up) as i64 - (self.taps_per_phase as i64 - 1);
        let drop = (oldest_needed - self.history_start).clamp(0, self.history.len() as i64);
        if drop > 0 {
            self.history.drain(..drop as usize);
            self.history_start += drop;
        }
    }
}

/// Converts a 16-bit linear PCM sample to a float in [-1, 1).
pub fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

/// Converts a float sample to 16-bit linear PCM, saturating outside [-1, 1).
pub fn f32_to_i16(sample: f32) -> i16 {
    // `as` saturates for floats, which is the clipping we want.
    (sample * 32768.0).round() as i16
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four partial sums let the compiler vectorise without reassociating a single sum. (Eight and
    // sixteen were measured too, with `dragoman bench ingest`: both slower.)
    let mut sums = [0.0f32; 4];
    let chunks_a = a.chunks_exact(4);
    let chunks_b = b.chunks_exact(4);
    let tail: f32 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for lane in 0..4 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Designs the Kaiser-windowed sinc low-pass at the upsampled rate `from_hz * up`, with gain `up`
/// (making up for the inserted zeros) and an odd length so the centre tap is a whole sample.
fn design_lowpass(from_hz: u32, to_hz: u32, up: u64) -> Vec<f64> {
    let upsampled_hz = f64::from(from_hz) * up as f64;
    let nyquist_hz = f64::from(from_hz.min(to_hz)) / 2.0;
    let (pass_edge, stop_edge) = if to_hz > from_hz { UPSAMPLE_EDGES } else { DOWNSAMPLE_EDGES };
    let (pass_hz, stop_hz) = (pass_edge * nyquist_hz, stop_edge * nyquist_hz);
    let cutoff = (pass_hz + stop_hz) / 2.0 / upsampled_hz; // cycles per sample
    let transition = 2.0 * PI * (stop_hz - pass_hz) / upsampled_hz; // radians per sample
    // Kaiser's formulas for the length and shape parameter.
    let attenuation = STOPBAND_ATTENUATION_DB;
    let order = ((attenuation - 7.95) / (2.285 * transition)).ceil() as usize;
    let len = order | 1;
    let beta = 0.1102 * (attenuation - 8.7);
    let centre = (len - 1) as f64 / 2.0;
    let denominator = bessel_i0(beta);
    let mut taps: Vec<f64> = (0..len)
        .map(|index| {
            let x = index as f64 - centre;
            let sinc = if x == 0.0 { 2.0 * cutoff } else { (2.0 * PI * cutoff * x).sin() / (PI * x) };
            let ratio = x / centre;
            let window = bessel_i0(beta * (1.0 - ratio * ratio).max(0.0).sqrt()) / denominator;
            sinc * window
        })
        .collect();
    // Exact unity gain at DC for every output phase on average.
    let sum: f64 = taps.iter().sum();
    for tap in &mut taps {
        *tap *= up as f64 / sum;
    }
    taps
}

/// Zeroth-order modified Bessel function of the first kind, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let half = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..64 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_IN: usize = 160; // 20 ms at 8 kHz

    fn sine(freq_hz: f64, rate_hz: f64, amplitude: f64, len: usize) -> Vec<f32> {
        (0..len).map(|n| (amplitude * (2.0 * PI * freq_hz * n as f64 / rate_hz).sin()) as f32).collect()
    }

    /// Streams `input` through in 20 ms frames, then flushes.
    fn resample_in_frames(resampler: &mut Resampler, input: &[f32], frame: usize) -> (Vec<f32>, Vec<usize>) {
        let mut output = Vec::new();
        let mut sizes = Vec::new();
        for chunk in input.chunks(frame) {
            sizes.push(resampler.process(chunk, &mut output));
        }
        resampler.flush(&mut output);
        (output, sizes)
    }

    /// Amplitude of the component at `freq_hz` (a single DFT bin with a Hann window, so a tone
    /// next to it barely leaks in).
    fn amplitude_at(signal: &[f32], freq_hz: f64, rate_hz: f64) -> f64 {
        let n = signal.len() as f64;
        let (mut re, mut im, mut window_sum) = (0.0, 0.0, 0.0);
        for (index, &sample) in signal.iter().enumerate() {
            let window = 0.5 - 0.5 * (2.0 * PI * index as f64 / n).cos();
            let phase = 2.0 * PI * freq_hz * index as f64 / rate_hz;
            re += f64::from(sample) * window * phase.cos();
            im -= f64::from(sample) * window * phase.sin();
            window_sum += window;
        }
        2.0 * (re * re + im * im).sqrt() / window_sum
    }

    fn db(ratio: f64) -> f64 {
        20.0 * ratio.log10()
    }

    #[test]
    fn one_khz_keeps_frequency_amplitude_and_timing() {
        let input = sine(1000.0, 8000.0, 0.5, 8000);
        let mut resampler = Resampler::new(8000, 16000).expect("valid rates");
        let (output, _) = resample_in_frames(&mut resampler, &input, FRAME_IN);
        assert_eq!(output.len(), 16000);
        // Away from the start and end transients the output is the ideal 16 kHz sine sample for
        // sample, phase included: no delay to subtract.
        let ideal = sine(1000.0, 16000.0, 0.5, 16000);
        let worst =
            output[400..15600].iter().zip(&ideal[400..15600]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 0.5e-3, "max deviation from ideal sine {worst}");
        let amplitude = amplitude_at(&output[400..15600], 1000.0, 16000.0);
        assert!((db(amplitude / 0.5)).abs() < 0.01, "1 kHz gain {} dB", db(amplitude / 0.5));
    }

    #[test]
    fn tone_near_nyquist_is_not_imaged() {
        // Upsampling by two mirrors a 3.9 kHz tone to 8 - 3.9 = 4.1 kHz unless filtered; sample
        // repetition, for example, leaves the mirror only ~3.9 dB below the tone.
        let input = sine(3900.0, 8000.0, 0.5, 16000);
        let mut resampler = Resampler::new(8000, 16000).expect("valid rates");
        let (output, _) = resample_in_frames(&mut resampler, &input, FRAME_IN);
        let steady = &output[1000..31000];
        let tone = amplitude_at(steady, 3900.0, 16000.0);
        let image = amplitude_at(steady, 4100.0, 16000.0);
        assert!(db(image / 0.5) < -70.0, "4.1 kHz image at {} dB", db(image / 0.5));
        assert!(db(tone / 0.5) > -6.0, "3.9 kHz tone at {} dB", db(tone / 0.5));
        assert!(db(image / tone) < -55.0, "image {} dB below the tone", db(image / tone));
        // Sample repetition fails this test: check the test can tell.
        let repeated: Vec<f32> = input.iter().flat_map(|&s| [s, s]).collect();
        let repeated_image = amplitude_at(&repeated[1000..31000], 4100.0, 16000.0);
        assert!(db(repeated_image / 0.5) > -20.0);
    }

    #[test]
    fn passband_is_flat_across_the_telephone_band() {
        for freq_hz in [300.0, 1000.0, 2000.0, 3000.0, 3400.0] {
            let input = sine(freq_hz, 8000.0, 0.5, 8000);
            let mut resampler = Resampler::new(8000, 16000).expect("valid rates");
            let (output, _) = resample_in_frames(&mut resampler, &input, FRAME_IN);
            let gain = db(amplitude_at(&output[800..15200], freq_hz, 16000.0) / 0.5);
            assert!(gain.abs() < 0.05, "{freq_hz} Hz gain {gain} dB");
        }
    }

    #[test]
    fn frames_join_without_discontinuities() {
        let input = sine(1000.0, 8000.0, 0.5, 8000);
        let mut framed = Resampler::new(8000, 16000).expect("valid rates");
        let (output, sizes) = resample_in_frames(&mut framed, &input, FRAME_IN);
        // 20 ms in gives 20 ms out once the look-ahead is filled.
        let held_back = 320 - sizes[0];
        assert!(held_back > 0 && held_back < 160, "first frame held back {held_back}");
        assert!(sizes[1..].iter().all(|&size| size == 320), "{sizes:?}");
        // Streaming in 20 ms frames gives the same samples as one call, and as odd-sized chunks.
        let mut whole = Resampler::new(8000, 16000).expect("valid rates");
        let (one_call, _) = resample_in_frames(&mut whole, &input, input.len());
        let mut odd = Resampler::new(8000, 16000).expect("valid rates");
        let (odd_chunks, _) = resample_in_frames(&mut odd, &input, 37);
        assert_eq!(output, one_call);
        assert_eq!(output, odd_chunks);
        // The largest sample-to-sample step of a 0.5-amplitude 1 kHz sine at 16 kHz is
        // 0.5 * 2 sin(pi/16) = 0.195; a glitch at a frame boundary would exceed it.
        let max_step = output[400..15600].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f32, f32::max);
        assert!(max_step < 0.196, "max step {max_step}");
    }

    #[test]
    fn held_back_matches_first_frame_and_flush() {
        let mut resampler = Resampler::new(8000, 16000).expect("valid rates");
        let mut output = Vec::new();
        let first = resampler.process(&vec![0.1; FRAME_IN], &mut output);
        assert_eq!(first + resampler.held_back(), 320);
        let second = resampler.process(&vec![0.1; FRAME_IN], &mut output);
        assert_eq!(second, 320);
        let held = resampler.held_back();
        assert_eq!(resampler.flush(&mut output), held);
        assert_eq!(output.len(), 640);
    }

    #[test]
    fn downsampling_removes_content_above_the_new_nyquist() {
        // 48 kHz to 16 kHz: a 12 kHz tone would alias to 4 kHz.
        let mut resampler = Resampler::new(48000, 16000).expect("valid rates");
        let input = sine(12000.0, 48000.0, 0.5, 48000);
        let (output, _) = resample_in_frames(&mut resampler, &input, 960);
        assert_eq!(output.len(), 16000);
        let alias = amplitude_at(&output[800..15200], 4000.0, 16000.0);
        assert!(db(alias / 0.5) < -70.0, "alias at {} dB", db(alias / 0.5));
        let mut resampler = Resampler::new(48000, 16000).expect("valid rates");
        let input = sine(1000.0, 48000.0, 0.5, 48000);
        let (output, _) = resample_in_frames(&mut resampler, &input, 960);
        let gain = db(amplitude_at(&output[800..15200], 1000.0, 16000.0) / 0.5);
        assert!(gain.abs() < 0.05, "1 kHz gain {gain} dB");
    }

    #[test]
    fn equal_rates_pass_through_exactly() {
        let mut resampler = Resampler::new(16000, 16000).expect("valid rates");
        let input = sine(440.0, 16000.0, 0.3, 1000);
        let (output, sizes) = resample_in_frames(&mut resampler, &input, 320);
        assert_eq!(output, input);
        assert_eq!(sizes[0], 320);
    }

    #[test]
    fn rejects_bad_rates() {
        assert!(matches!(Resampler::new(0, 16000), Err(ResampleError::ZeroRate { .. })));
        assert!(matches!(Resampler::new(44100, 16000), Err(ResampleError::RatioTooComplex { .. })));
    }

    #[test]
    fn i16_conversion_round_trips_and_saturates() {
        for sample in [i16::MIN, -1, 0, 1, 12345, i16::MAX] {
            assert_eq!(f32_to_i16(i16_to_f32(sample)), sample);
        }
        assert_eq!(f32_to_i16(2.0), i16::MAX);
        assert_eq!(f32_to_i16(-2.0), i16::MIN);
    }
}
