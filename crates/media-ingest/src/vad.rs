//! Voice activity detection with the Silero VAD v5 model, run by tract (pure Rust ONNX).
//!
//! The model scores 512-sample windows (32 ms) of 16 kHz audio. Each call sees the window
//! prefixed with the last 64 samples of the previous one, and carries a recurrent state of shape
//! `[2, 1, 128]` from window to window, so one [`SileroVad`] belongs to exactly one stream.
//!
//! We load the If-less 16 kHz export that the `silero-vad` PyPI package ships as
//! `silero_vad_openvino_16k.onnx` (inputs `input: f32[1, 576]`, `state: f32[2, 1, 128]`; outputs
//! `output: f32[1, 1]`, `stateN: f32[2, 1, 128]`). It is the same network as the reference
//! `silero_vad.onnx` without the `If` on the sample rate, which tract cannot plan; under
//! onnxruntime the two give identical probabilities.
//!
//! [`SileroModel`] is the loaded, optimised plan: load it once per process and share it (it is
//! cheap to clone and `Send + Sync`). Inference is CPU work of about 0.1 to 0.3 ms per window
//! (measured on a shared 2-core machine); call it from a blocking pool, not the async runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

/// Sample rate the model expects.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// Samples per scored window (32 ms at 16 kHz).
pub const WINDOW_SAMPLES: usize = 512;
/// Samples of the previous window prefixed to each model input.
const CONTEXT_SAMPLES: usize = 64;
const STATE_SHAPE: [usize; 3] = [2, 1, 128];
const STATE_LEN: usize = 2 * 128;

/// File name of the model under the model directory's `silero-vad/` folder.
pub const MODEL_FILE_NAME: &str = "silero_vad_openvino_16k.onnx";

/// Where the model is looked for when no path is configured:
/// `$DRAGOMAN_MODEL_DIR/silero-vad/silero_vad_openvino_16k.onnx`, with `DRAGOMAN_MODEL_DIR`
/// defaulting to `$HOME/.cache/dragoman/models` (where `scripts/fetch-test-models.sh` puts it).
pub fn default_model_path() -> PathBuf {
    dragoman_runtime::config::model_dir().join("silero-vad").join(MODEL_FILE_NAME)
}

/// VAD settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VadConfig {
    /// Path of `silero_vad_openvino_16k.onnx`; defaults to [`default_model_path`].
    pub model_path: PathBuf,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self { model_path: default_model_path() }
    }
}

/// Error loading or running the VAD model.
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// The model file is missing, is not ONNX, or is not the If-less 16 kHz Silero export.
    #[error("load silero vad model {path}: {message}")]
    Load {
        /// The path that was tried.
        path: PathBuf,
        /// tract's explanation, with its causes.
        message: String,
    },
    /// The model failed on a window; not expected with a model that loaded.
    #[error("run silero vad model: {0}")]
    Inference(String),
}

/// The Silero VAD network, loaded and optimised; shared by every stream.
#[derive(Clone)]
pub struct SileroModel {
    plan: Arc<TypedRunnableModel>,
    path: PathBuf,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SileroModel {
    /// Loads the If-less 16 kHz Silero VAD export from `path` and checks its inputs and outputs.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, VadError> {
        let path = path.as_ref().to_path_buf();
        let load_error = |err: TractError| VadError::Load { path: path.clone(), message: format!("{err:#}") };
        let plan = std::fs::read(&path)
            .map_err(TractError::from)
            .and_then(|bytes| {
                let onnx = tract_onnx::onnx();
                let mut proto = onnx.proto_model_for_read(&mut bytes.as_slice())?;
                if let Some(graph) = proto.graph.as_mut() {
                    make_node_names_unique(&mut graph.node);
                }
                onnx.model_for_proto_model(&proto)?
                    .with_input_fact(0, f32::fact([1, CONTEXT_SAMPLES + WINDOW_SAMPLES]).into())?
                    .with_input_fact(1, f32::fact(STATE_SHAPE).into())?
                    .into_optimized()?
                    .into_runnable()
            })
            .map_err(load_error)?;
        let model = Self { plan, path };
        // One run on silence proves the graph takes and returns what we expect, so a wrong file
        // fails at start-up rather than on the first call.
        let mut probe = SileroVad::new(&model);
        probe
            .process_window(&[0.0; WINDOW_SAMPLES])
            .map_err(|err| VadError::Load { path: model.path.clone(), message: err.to_string() })?;
        Ok(model)
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Renames nodes whose names repeat. The Silero export names 15 constants `F0::anon`; node names
/// carry no meaning in ONNX, but tract's debug-build graph checks reject duplicates.
fn make_node_names_unique(nodes: &mut [tract_onnx::pb::NodeProto]) {
    let mut seen = std::collections::HashSet::new();
    for (index, node) in nodes.iter_mut().enumerate() {
        if !seen.insert(node.name.clone()) {
            node.name = format!("{}#{index}", node.name);
            seen.insert(node.name.clone());
        }
    }
}

/// One scored 32 ms window.
#[derive(Debug, Clone, PartialEq)]
pub struct VadWindow {
    /// Index of the window's first sample from stream start (16 kHz).
    pub start_sample: u64,
    /// Speech probability in [0, 1].
    pub probability: f32,
    /// The window's [`WINDOW_SAMPLES`] samples.
    pub samples: Vec<f32>,
}

/// Voice activity detector for one 16 kHz stream.
#[derive(Debug)]
pub struct SileroVad {
    model: SileroModel,
    state: Vec<f32>,
    /// Model input being assembled: context followed by the current window.
    input: Vec<f32>,
    /// Samples of an incomplete window carried to the next [`push`](Self::push).
    pending: Vec<f32>,
    /// Samples scored so far.
    position: u64,
}

impl SileroVad {
    /// A detector at stream start (silent context, zero state).
    pub fn new(model: &SileroModel) -> Self {
        Self {
            model: model.clone(),
            state: vec![0.0; STATE_LEN],
            input: vec![0.0; CONTEXT_SAMPLES + WINDOW_SAMPLES],
            pending: Vec::with_capacity(WINDOW_SAMPLES),
            position: 0,
        }
    }

    /// Back to stream start.
    pub fn reset(&mut self) {
        self.state.fill(0.0);
        self.input.fill(0.0);
        self.pending.clear();
        self.position = 0;
    }

    /// Appends 16 kHz samples (any count) and scores every window they complete, in order.
    pub fn push(&mut self, mut samples: &[f32]) -> Result<Vec<VadWindow>, VadError> {
        let mut windows = Vec::new();
        while !samples.is_empty() {
            let take = (WINDOW_SAMPLES - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.pending.len() == WINDOW_SAMPLES {
                let window = std::mem::take(&mut self.pending);
                let start_sample = self.position;
                let probability = self.process_window(&window)?;
                windows.push(VadWindow { start_sample, probability, samples: window });
                self.pending = Vec::with_capacity(WINDOW_SAMPLES);
            }
        }
        Ok(windows)
    }

    /// Scores one window directly (bypassing [`push`](Self::push)'s buffering) and returns the
    /// speech probability. Panics if `window` is not [`WINDOW_SAMPLES`] long.
    pub fn process_window(&mut self, window: &[f32]) -> Result<f32, VadError> {
        assert_eq!(window.len(), WINDOW_SAMPLES, "silero vad windows are {WINDOW_SAMPLES} samples");
        self.input[CONTEXT_SAMPLES..].copy_from_slice(window);
        let inference = |err: TractError| VadError::Inference(format!("{err:#}"));
        let input = Tensor::from_shape(&[1, CONTEXT_SAMPLES + WINDOW_SAMPLES], &self.input).map_err(inference)?;
        let state = Tensor::from_shape(&STATE_SHAPE, &self.state).map_err(inference)?;
        let outputs = self.model.plan.run(tvec!(input.into(), state.into())).map_err(inference)?;
        let (Some(probability), Some(state)) = (outputs.first(), outputs.get(1)) else {
            return Err(VadError::Inference(format!("expected 2 outputs, got {}", outputs.len())));
        };
        let probability = probability.to_plain_array_view::<f32>().map_err(inference)?;
        let state = state.to_plain_array_view::<f32>().map_err(inference)?;
        let (Some(&probability), 1, STATE_LEN) = (probability.iter().next(), probability.len(), state.len()) else {
            return Err(VadError::Inference(format!(
                "unexpected output sizes: {} probabilities, {} state values",
                probability.len(),
                state.len()
            )));
        };
        for (slot, &value) in self.state.iter_mut().zip(state.iter()) {
            *slot = value;
        }
        // The next window's context is the end of this one.
        self.input.copy_within(WINDOW_SAMPLES.., 0);
        self.position += WINDOW_SAMPLES as u64;
        Ok(probability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_shareable_and_detectors_movable_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<SileroModel>();
        send::<SileroVad>();
    }

    #[test]
    fn duplicate_node_names_are_made_unique() {
        let node = |name: &str| tract_onnx::pb::NodeProto { name: name.to_string(), ..Default::default() };
        let mut nodes = vec![node("F0::anon"), node("a"), node("F0::anon"), node("F0::anon")];
        make_node_names_unique(&mut nodes);
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["F0::anon", "a", "F0::anon#2", "F0::anon#3"]);
    }

    #[test]
    fn default_model_path_follows_the_model_dir_layout() {
        let path = default_model_path();
        assert!(path.ends_with("silero-vad/silero_vad_openvino_16k.onnx"), "{}", path.display());
        assert_eq!(VadConfig::default().model_path, path);
    }
}
