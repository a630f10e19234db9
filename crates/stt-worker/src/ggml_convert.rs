//! Converts a CTranslate2 Whisper model folder (what faster-whisper and the `ct2` engine load)
//! into the single ggml file whisper.cpp loads, so one download serves both engines.
//!
//! Pure Rust, no Python at run time. The converter reads the CTranslate2 index first (names,
//! shapes, offsets; no tensor data), checks every variable it needs against the shapes the model's
//! own dimensions imply, and only then streams the tensors out one at a time, so memory stays at
//! about one tensor (the token embedding) even for large models. The output is written beside
//! the destination and renamed into place, so a reader never sees half a model.
//!
//! ## CTranslate2 `model.bin` (binary version 4 to 6, little-endian)
//! ```text
//! u32 binary_version
//! string spec_name, u32 spec_revision            (version >= 2)
//! u32 n_variables, then per variable:
//!     string name, u8 rank, u32 dims[rank], u8 dtype, u32 n_bytes, n_bytes of data
//! u32 n_aliases, then per alias: string alias, string target     (version >= 3)
//! string = u16 length counting a trailing NUL, the bytes, the NUL
//! dtype  = 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16
//! ```
//!
//! ## whisper.cpp's ggml file (what `whisper_model_load` reads, all i32/f32 little-endian)
//! ```text
//! i32 magic 0x67676d6c ("ggml")
//! i32 n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!     n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
//! i32 n_mels, i32 n_fft_bins (201), f32 mel_filters[n_mels][n_fft_bins]
//! i32 n_tokens, then per token: i32 length, the token's bytes
//!     (only the ordinary BPE tokens; whisper.cpp derives the special tokens from n_vocab)
//! per tensor: i32 n_dims, i32 name_length, i32 type (0 f32, 1 f16),
//!     i32 dims[n_dims] innermost first, the name, the data
//! ```
//!
//! ## Tensor mapping (per layer `i`; `d` = model width)
//! | CTranslate2                                        | whisper.cpp                              |
//! |----------------------------------------------------|------------------------------------------|
//! | `encoder/conv{1,2}/weight` `[d, in, 3]`            | `encoder.conv{1,2}.weight` (f16)         |
//! | `encoder/conv{1,2}/bias` `[d]`                     | `encoder.conv{1,2}.bias` `[d, 1]` (f32)  |
//! | `encoder/position_encodings/encodings`             | `encoder.positional_embedding` (f32)     |
//! | `encoder/layer_norm/{gamma,beta}`                  | `encoder.ln_post.{weight,bias}`          |
//! | `{enc,dec}/layer_i/self_attention/layer_norm/*`    | `….blocks.i.attn_ln.*`                   |
//! | `{enc,dec}/layer_i/self_attention/linear_0` `[3d]` | `….blocks.i.attn.{query,key,value}`      |
//! | `{enc,dec}/layer_i/self_attention/linear_1`        | `….blocks.i.attn.out`                    |
//! | `{enc,dec}/layer_i/ffn/layer_norm/*`               | `….blocks.i.mlp_ln.*`                    |
//! | `{enc,dec}/layer_i/ffn/linear_{0,1}`               | `….blocks.i.mlp.{0,2}`                   |
//! | `decoder/layer_i/attention/layer_norm/*`           | `decoder.blocks.i.cross_attn_ln.*`       |
//! | `decoder/layer_i/attention/linear_0`               | `decoder.blocks.i.cross_attn.query`      |
//! | `decoder/layer_i/attention/linear_1` `[2d]`        | `decoder.blocks.i.cross_attn.{key,value}`|
//! | `decoder/layer_i/attention/linear_2`               | `decoder.blocks.i.cross_attn.out`        |
//! | `decoder/embeddings/weight`                        | `decoder.token_embedding.weight` (f16)   |
//! | `decoder/position_encodings/encodings`             | `decoder.positional_embedding` (f32)     |
//! | `decoder/layer_norm/{gamma,beta}`                  | `decoder.ln.{weight,bias}`               |
//!
//! CTranslate2 fuses q, k and v (self-attention) and k and v (cross-attention) into one linear
//! layer stacked along the output rows; the converter splits the rows back. Whisper's key
//! projection has no bias (CTranslate2 stores zeros there) and whisper.cpp has no slot for one:
//! the key-bias slice is dropped, which is exact even if it were not zero, because a bias on the
//! keys adds the same constant to every score of a query and softmax ignores it. The output
//! projection is tied to the token embedding in Whisper (`decoder/projection/weight` is an alias
//! of it in CTranslate2), so it is not written.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// "ggml" read as a little-endian u32: the magic whisper.cpp checks first.
const GGML_MAGIC: u32 = 0x6767_6d6c;
/// ggml file type 1: 2-D weights in f16 (biases, norms, positional embeddings stay f32).
const GGML_FTYPE_MOSTLY_F16: i32 = 1;
/// The newest CTranslate2 binary layout this converter knows.
const CT2_MAX_BINARY_VERSION: u32 = 6;
/// Whisper's audio front end: 400-sample FFT at 16 kHz gives 201 frequency bins.
const WHISPER_N_FFT: usize = 400;
const WHISPER_SAMPLE_RATE_HZ: f64 = 16_000.0;
/// Sanity bounds that turn a corrupt header into an error instead of a huge allocation.
const MAX_VARIABLES: u32 = 1_000_000;
const MAX_RANK: usize = 8;

/// Why a conversion failed. Every malformed input ends here, never in a panic.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is truncated: it ends inside {what}")]
    Truncated { path: PathBuf, what: String },
    #[error("{path} is not a valid CTranslate2 model: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: unsupported model: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: bad vocabulary: {reason}")]
    Vocabulary { path: PathBuf, reason: String },
}

/// The model dimensions written into the ggml header, in whisper.cpp's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperHparams {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

impl WhisperHparams {
    /// Whether the model is multilingual, by whisper.cpp's own rule.
    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51_865
    }

    /// The number of tensors whisper.cpp expects for these dimensions.
    pub fn tensor_count(&self) -> usize {
        7 + 15 * self.n_audio_layer + 4 + 24 * self.n_text_layer
    }
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertReport {
    pub hparams: WhisperHparams,
    /// Ordinary BPE tokens written (the special tokens are derived by whisper.cpp).
    pub tokens_written: usize,
    /// Tensor names written, in file order.
    pub tensors: Vec<String>,
    pub bytes_written: u64,
}

/// Converts the CTranslate2 Whisper model in `ct2_dir` (`model.bin` plus `vocabulary.json`,
/// `vocabulary.txt` or `tokenizer.json`) into a whisper.cpp ggml file at `output`.
///
/// The file is written to `output` with a `.partial` suffix first and renamed when complete; on
/// error the partial file is removed.
pub fn convert_ct2_to_ggml(ct2_dir: &Path, output: &Path) -> Result<ConvertReport, ConvertError> {
    let model_path = ct2_dir.join("model.bin");
    let file = File::open(&model_path).map_err(|source| ConvertError::Io { path: model_path.clone(), source })?;
    let len = file.metadata().map_err(|source| ConvertError::Io { path: model_path.clone(), source })?.len();
    let mut model = Ct2Model::read_index(BufReader::new(file), len, &model_path)?;
    let plan = Plan::new(&mut model)?;
    let tokens = read_vocabulary(ct2_dir, &plan.hparams)?;

    let mut partial_name = output.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let result = write_ggml(&mut model, &plan, &tokens, &partial);
    match result {
        Ok(mut report) => {
            fs::rename(&partial, output).map_err(|source| ConvertError::Write { path: output.to_owned(), source })?;
            report.tokens_written = tokens.len();
            Ok(report)
        }
        Err(err) => {
            // Best effort: the error being returned is the one worth reporting.
            let _ = fs::remove_file(&partial);
            Err(err)
        }
    }
}

fn write_ggml(
    model: &mut Ct2Model<BufReader<File>>,
    plan: &Plan,
    tokens: &[Vec<u8>],
    path: &Path,
) -> Result<ConvertReport, ConvertError> {
    let file = File::create(path).map_err(|source| ConvertError::Write { path: path.to_owned(), source })?;
    let mut out = CountingWriter { inner: BufWriter::with_capacity(1 << 20, file), written: 0 };
    let werr = |source| ConvertError::Write { path: path.to_owned(), source };
    let h = &plan.hparams;

    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(&GGML_MAGIC.to_le_bytes());
    for value in [
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels,
    ] {
        header.extend_from_slice(&i32_of(value).to_le_bytes());
    }
    header.extend_from_slice(&GGML_FTYPE_MOSTLY_F16.to_le_bytes());
    out.write_all(&header).map_err(werr)?;

    let n_bins = WHISPER_N_FFT / 2 + 1;
    let filters = mel_filters(h.n_mels, WHISPER_N_FFT, WHISPER_SAMPLE_RATE_HZ);
    out.write_all(&i32_of(h.n_mels).to_le_bytes()).map_err(werr)?;
    out.write_all(&i32_of(n_bins).to_le_bytes()).map_err(werr)?;
    let filter_bytes: Vec<u8> = filters.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.write_all(&filter_bytes).map_err(werr)?;

    out.write_all(&i32_of(tokens.len()).to_le_bytes()).map_err(werr)?;
    for token in tokens {
        out.write_all(&i32_of(token.len()).to_le_bytes()).map_err(werr)?;
        out.write_all(token).map_err(werr)?;
    }

    let mut names = Vec::with_capacity(plan.tensors.len());
    for tensor in &plan.tensors {
        let source = model.read_rows(&tensor.source, tensor.rows.clone())?;
        let data = encode(&source, tensor.ggml_type);
        let mut head = Vec::with_capacity(16 + 4 * tensor.shape.len() + tensor.name.len());
        head.extend_from_slice(&i32_of(tensor.shape.len()).to_le_bytes());
        head.extend_from_slice(&i32_of(tensor.name.len()).to_le_bytes());
        head.extend_from_slice(&(tensor.ggml_type as i32).to_le_bytes());
        for dim in tensor.shape.iter().rev() {
            head.extend_from_slice(&i32_of(*dim).to_le_bytes());
        }
        head.extend_from_slice(tensor.name.as_bytes());
        out.write_all(&head).map_err(werr)?;
        out.write_all(&data).map_err(werr)?;
        names.push(tensor.name.clone());
    }
    out.inner.flush().map_err(werr)?;
    out.inner.into_inner().map_err(|e| werr(e.into_error()))?.sync_all().map_err(werr)?;
    Ok(ConvertReport {
        hparams: plan.hparams,
        tokens_written: tokens.len(),
        tensors: names,
        bytes_written: out.written,
    })
}

struct CountingWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> CountingWriter<W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Dimensions here are bounded by the shapes read from a u32 header and checked against each
/// other; a model too large for whisper.cpp's i32 fields saturates and then fails its checks.
fn i32_of(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------------------------
// CTranslate2 model.bin
// ---------------------------------------------------------------------------------------------

/// CTranslate2's element types, in the order of its `DataType` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ct2Type {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Type {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::Bf16)
    }
}

/// One variable's index entry: where its data lies in the file.
#[derive(Debug, Clone)]
struct Ct2Variable {
    shape: Vec<usize>,
    dtype: Ct2Type,
    offset: u64,
    n_bytes: usize,
}

/// The index of a `model.bin`; tensor data is read on demand.
struct Ct2Model<R> {
    reader: R,
    path: PathBuf,
    variables: HashMap<String, Ct2Variable>,
    aliases: HashMap<String, String>,
}

/// A slice of rows (along the first dimension) of one variable, decoded from the file.
struct RawTensor {
    dtype: Ct2Type,
    bytes: Vec<u8>,
}

impl<R: Read + Seek> Ct2Model<R> {
    /// Reads every header and skips over the data, checking that each variable's data lies
    /// inside the file and agrees with its shape and type.
    fn read_index(reader: R, file_len: u64, path: &Path) -> Result<Self, ConvertError> {
        let mut cursor = IndexReader { reader, position: 0, file_len, path };
        let version = cursor.u32("the binary version")?;
        if version < 4 {
            return Err(cursor.unsupported(format!(
                "binary version {version} predates typed variables (4); convert the model again with a newer ctranslate2"
            )));
        }
        if version > CT2_MAX_BINARY_VERSION {
            return Err(cursor.unsupported(format!(
                "binary version {version} is newer than this converter knows ({CT2_MAX_BINARY_VERSION})"
            )));
        }
        let spec = cursor.string("the spec name")?;
        let _revision = cursor.u32("the spec revision")?;
        if spec != "WhisperSpec" {
            return Err(cursor.unsupported(format!("spec {spec:?} is not a Whisper model (WhisperSpec)")));
        }
        let count = cursor.u32("the variable count")?;
        if count > MAX_VARIABLES {
            return Err(cursor.corrupt(format!("implausible variable count {count}")));
        }
        let mut variables = HashMap::with_capacity(count as usize);
        for index in 0..count {
            let name = cursor.string(&format!("the name of variable {index}"))?;
            let rank = usize::from(cursor.u8(&format!("the rank of {name}"))?);
            if rank > MAX_RANK {
                return Err(cursor.corrupt(format!("variable {name} has rank {rank}")));
            }
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(cursor.u32(&format!("the shape of {name}"))? as usize);
            }
            let type_id = cursor.u8(&format!("the type of {name}"))?;
            let dtype = Ct2Type::from_id(type_id)
                .ok_or_else(|| cursor.corrupt(format!("variable {name} has unknown type id {type_id}")))?;
            let n_bytes = cursor.u32(&format!("the size of {name}"))? as usize;
            let elements = shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
            if elements.and_then(|e| e.checked_mul(dtype.size())) != Some(n_bytes) {
                return Err(cursor.corrupt(format!(
                    "variable {name} holds {n_bytes} bytes, but its shape {shape:?} of {dtype:?} needs {}",
                    elements.map_or("more than addressable".to_owned(), |e| (e * dtype.size()).to_string())
                )));
            }
            let offset = cursor.position;
            cursor.skip(n_bytes as u64, &format!("the data of {name}"))?;
            if variables.insert(name.clone(), Ct2Variable { shape, dtype, offset, n_bytes }).is_some() {
                return Err(cursor.corrupt(format!("variable {name} appears twice")));
            }
        }
        let mut aliases = HashMap::new();
        let alias_count = cursor.u32("the alias count")?;
        if alias_count > MAX_VARIABLES {
            return Err(cursor.corrupt(format!("implausible alias count {alias_count}")));
        }
        for index in 0..alias_count {
            let alias = cursor.string(&format!("alias {index}"))?;
            let target = cursor.string(&format!("the target of alias {alias}"))?;
            aliases.insert(alias, target);
        }
        let path = path.to_owned();
        Ok(Self { reader: cursor.reader, path, variables, aliases })
    }

    /// Looks a variable up by name, following aliases.
    fn variable(&self, name: &str) -> Option<&Ct2Variable> {
        self.variables.get(name).or_else(|| self.aliases.get(name).and_then(|target| self.variables.get(target)))
    }

    fn require(&self, name: &str) -> Result<&Ct2Variable, ConvertError> {
        self.variable(name).ok_or_else(|| ConvertError::Corrupt {
            path: self.path.clone(),
            reason: format!("variable {name} is missing"),
        })
    }

    /// Reads a small integer scalar (`encoder/num_heads` is stored as an int16).
    fn scalar(&mut self, name: &str) -> Result<Option<i64>, ConvertError> {
        let Some(var) = self.variable(name).cloned() else { return Ok(None) };
        if !var.shape.iter().all(|d| *d == 1) {
            return Err(self.corrupt(format!("{name} should be a scalar, has shape {:?}", var.shape)));
        }
        let bytes = self.read_bytes(&var, 0, var.n_bytes)?;
        let value = match var.dtype {
            Ct2Type::I8 => i64::from(bytes[0] as i8),
            Ct2Type::I16 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            Ct2Type::I32 => i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            other => return Err(self.corrupt(format!("{name} should be an integer, is {other:?}"))),
        };
        Ok(Some(value))
    }

    /// Reads rows `rows` (along the first dimension) of variable `name`.
    fn read_rows(&mut self, name: &str, rows: std::ops::Range<usize>) -> Result<RawTensor, ConvertError> {
        let var = self.require(name)?.clone();
        let n_rows = var.shape.first().copied().unwrap_or(1);
        let row_bytes = var.n_bytes.checked_div(n_rows).unwrap_or(0);
        if rows.start > rows.end || rows.end > n_rows {
            return Err(self.corrupt(format!("{name} has {n_rows} rows, {rows:?} were asked for")));
        }
        let bytes = self.read_bytes(&var, rows.start * row_bytes, rows.len() * row_bytes)?;
        Ok(RawTensor { dtype: var.dtype, bytes })
    }

    fn read_bytes(&mut self, var: &Ct2Variable, start: usize, len: usize) -> Result<Vec<u8>, ConvertError> {
        let io_err = |source| ConvertError::Io { path: self.path.clone(), source };
        self.reader.seek(SeekFrom::Start(var.offset + start as u64)).map_err(io_err)?;
        let mut bytes = vec![0u8; len];
        self.reader.read_exact(&mut bytes).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                ConvertError::Truncated { path: self.path.clone(), what: "tensor data".into() }
            } else {
                ConvertError::Io { path: self.path.clone(), source }
            }
        })?;
        Ok(bytes)
    }

    fn corrupt(&self, reason: String) -> ConvertError {
        ConvertError::Corrupt { path: self.path.clone(), reason }
    }

    fn unsupported(&self, reason: String) -> ConvertError {
        ConvertError::Unsupported { path: self.path.clone(), reason }
    }
}

/// Sequential reads over the index, with positions checked against the file length so a
/// truncated file names what it ends inside.
struct IndexReader<'a, R> {
    reader: R,
    position: u64,
    file_len: u64,
    path: &'a Path,
}

impl<R: Read + Seek> IndexReader<'_, R> {
    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ConvertError> {
        let mut buf = [0u8; N];
        self.exact(&mut buf, what)?;
        Ok(buf)
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), ConvertError> {
        if self.position + buf.len() as u64 > self.file_len {
            return Err(self.truncated(what));
        }
        self.reader.read_exact(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                self.truncated(what)
            } else {
                ConvertError::Io { path: self.path.to_owned(), source }
            }
        })?;
        self.position += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self, what: &str) -> Result<u8, ConvertError> {
        Ok(self.bytes::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, ConvertError> {
        Ok(u32::from_le_bytes(self.bytes::<4>(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, ConvertError> {
        let len = usize::from(u16::from_le_bytes(self.bytes::<2>(what)?));
        if len == 0 {
            return Err(self.corrupt(format!("{what} has length 0 (a string holds at least its NUL)")));
        }
        let mut buf = vec![0u8; len];
        self.exact(&mut buf, what)?;
        if buf.pop() != Some(0) {
            return Err(self.corrupt(format!("{what} is not NUL-terminated")));
        }
        String::from_utf8(buf).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    fn skip(&mut self, len: u64, what: &str) -> Result<(), ConvertError> {
        if self.position + len > self.file_len {
            return Err(self.truncated(what));
        }
        let offset = i64::try_from(len).map_err(|_| self.truncated(what))?;
        self.reader
            .seek(SeekFrom::Current(offset))
            .map_err(|source| ConvertError::Io { path: self.path.to_owned(), source })?;
        self.position += len;
        Ok(())
    }

    fn truncated(&self, what: &str) -> ConvertError {
        ConvertError::Truncated { path: self.path.to_owned(), what: what.to_owned() }
    }

    fn corrupt(&self, reason: String) -> ConvertError {
        ConvertError::Corrupt { path: self.path.to_owned(), reason }
    }

    fn unsupported(&self, reason: String) -> ConvertError {
        ConvertError::Unsupported { path: self.path.to_owned(), reason }
    }
}

// ---------------------------------------------------------------------------------------------
// The conversion plan: which rows of which CTranslate2 variable become which ggml tensor
// ---------------------------------------------------------------------------------------------

/// ggml element types used in whisper files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GgmlType {
    F32 = 0,
    F16 = 1,
}

#[derive(Debug, Clone)]
struct PlannedTensor {
    /// whisper.cpp's name.
    name: String,
    /// The CTranslate2 variable it comes from.
    source: String,
    /// The rows of `source` it takes (a split of a fused projection, or all of them).
    rows: std::ops::Range<usize>,
    /// Shape in PyTorch order (outermost first); written reversed, as ggml wants.
    shape: Vec<usize>,
    ggml_type: GgmlType,
}

struct Plan {
    hparams: WhisperHparams,
    tensors: Vec<PlannedTensor>,
}

impl Plan {
    fn new<R: Read + Seek>(model: &mut Ct2Model<R>) -> Result<Self, ConvertError> {
        let shape = |model: &Ct2Model<R>, name: &str, rank: usize| -> Result<Vec<usize>, ConvertError> {
            let var = model.require(name)?;
            if var.shape.len() != rank {
                return Err(model.corrupt(format!("{name} has shape {:?}, expected rank {rank}", var.shape)));
            }
            Ok(var.shape.clone())
        };
        let embedding = shape(model, "decoder/embeddings/weight", 2)?;
        let conv1 = shape(model, "encoder/conv1/weight", 3)?;
        let enc_pos = shape(model, "encoder/position_encodings/encodings", 2)?;
        let dec_pos = shape(model, "decoder/position_encodings/encodings", 2)?;
        let (n_vocab, n_text_state) = (embedding[0], embedding[1]);
        let (n_audio_state, n_mels) = (conv1[0], conv1[1]);
        let count_layers = |model: &Ct2Model<R>, side: &str| {
            (0..)
                .take_while(|i| model.variable(&format!("{side}/layer_{i}/self_attention/linear_0/weight")).is_some())
                .count()
        };
        let n_audio_layer = count_layers(model, "encoder");
        let n_text_layer = count_layers(model, "decoder");
        // Whisper's heads are 64 wide at every size; the stored head count wins when present.
        let heads = |model: &mut Ct2Model<R>, name: &str, state: usize| -> Result<usize, ConvertError> {
            match model.scalar(name)? {
                Some(n) if n > 0 => Ok(n as usize),
                Some(n) => Err(model.corrupt(format!("{name} is {n}"))),
                None => Ok(state / 64),
            }
        };
        let hparams = WhisperHparams {
            n_vocab,
            n_audio_ctx: enc_pos[0],
            n_audio_state,
            n_audio_head: heads(model, "encoder/num_heads", n_audio_state)?,
            n_audio_layer,
            n_text_ctx: dec_pos[0],
            n_text_state,
            n_text_head: heads(model, "decoder/num_heads", n_text_state)?,
            n_text_layer,
            n_mels,
        };
        if n_audio_layer == 0 || n_text_layer == 0 {
            return Err(model.corrupt(format!("no layers found (encoder {n_audio_layer}, decoder {n_text_layer})")));
        }
        if n_audio_state != n_text_state {
            return Err(model.unsupported(format!(
                "encoder width {n_audio_state} differs from decoder width {n_text_state}; whisper.cpp needs them equal"
            )));
        }
        if n_audio_state % hparams.n_audio_head != 0 || n_text_state % hparams.n_text_head != 0 {
            return Err(model.corrupt("model width is not a multiple of the head count".into()));
        }
        check_projection_is_tied(model)?;

        let mut planner = Planner { model, tensors: Vec::new() };
        let d = n_audio_state;
        planner.whole("encoder/conv1/weight", "encoder.conv1.weight", &[d, n_mels, 3], GgmlType::F16)?;
        planner.reshaped("encoder/conv1/bias", "encoder.conv1.bias", &[d], &[d, 1], GgmlType::F32)?;
        planner.whole("encoder/conv2/weight", "encoder.conv2.weight", &[d, d, 3], GgmlType::F16)?;
        planner.reshaped("encoder/conv2/bias", "encoder.conv2.bias", &[d], &[d, 1], GgmlType::F32)?;
        planner.whole(
            "encoder/position_encodings/encodings",
            "encoder.positional_embedding",
            &[hparams.n_audio_ctx, d],
            GgmlType::F32,
        )?;
        planner.layer_norm("encoder/layer_norm", "encoder.ln_post", d)?;
        for i in 0..n_audio_layer {
            let (src, dst) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
            planner.self_attention(&src, &dst, d)?;
            planner.ffn(&src, &dst, d)?;
        }

        let d = n_text_state;
        planner.whole("decoder/embeddings/weight", "decoder.token_embedding.weight", &[n_vocab, d], GgmlType::F16)?;
        planner.whole(
            "decoder/position_encodings/encodings",
            "decoder.positional_embedding",
            &[hparams.n_text_ctx, d],
            GgmlType::F32,
        )?;
        planner.layer_norm("decoder/layer_norm", "decoder.ln", d)?;
        for i in 0..n_text_layer {
            let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
            planner.self_attention(&src, &dst, d)?;
            planner.cross_attention(&src, &dst, d)?;
            planner.ffn(&src, &dst, d)?;
        }
        let tensors = planner.tensors;
        debug_assert_eq!(tensors.len(), hparams.tensor_count());
        Ok(Self { hparams, tensors })
    }
}

/// whisper.cpp computes logits with the token embedding; a model whose output projection is a
/// different matrix cannot be represented.
fn check_projection_is_tied<R: Read + Seek>(model: &mut Ct2Model<R>) -> Result<(), ConvertError> {
    const PROJECTION: &str = "decoder/projection/weight";
    const EMBEDDING: &str = "decoder/embeddings/weight";
    if model.variable(PROJECTION).is_none() || model.aliases.get(PROJECTION).map(String::as_str) == Some(EMBEDDING) {
        return Ok(());
    }
    if model.variable("decoder/projection/bias").is_some() {
        return Err(model.unsupported("the output projection has a bias; whisper.cpp has none".into()));
    }
    let projection = model.require(PROJECTION)?.clone();
    let embedding = model.require(EMBEDDING)?.clone();
    let same = projection.shape == embedding.shape
        && projection.dtype == embedding.dtype
        && model.read_bytes(&projection, 0, projection.n_bytes)?
            == model.read_bytes(&embedding, 0, embedding.n_bytes)?;
    if same {
        Ok(())
    } else {
        Err(model.unsupported("the output projection is not tied to the token embedding".into()))
    }
}

struct Planner<'a, R> {
    model: &'a mut Ct2Model<R>,
    tensors: Vec<PlannedTensor>,
}

impl<R: Read + Seek> Planner<'_, R> {
    fn checked(&self, source: &str, expected: &[usize]) -> Result<usize, ConvertError> {
        let var = self.model.require(source)?;
        if var.shape != expected {
            return Err(self.model.corrupt(format!("{source} has shape {:?}, expected {expected:?}", var.shape)));
        }
        if !var.dtype.is_float() {
            return Err(self.model.unsupported(format!(
                "{source} is {:?} (a quantized model); convert from a float16 or float32 model",
                var.dtype
            )));
        }
        Ok(expected.first().copied().unwrap_or(1))
    }

    fn push(&mut self, name: String, source: &str, rows: std::ops::Range<usize>, shape: &[usize], ggml_type: GgmlType) {
        self.tensors.push(PlannedTensor { name, source: source.to_owned(), rows, shape: shape.to_vec(), ggml_type });
    }

    fn whole(&mut self, source: &str, name: &str, shape: &[usize], ggml_type: GgmlType) -> Result<(), ConvertError> {
        let rows = self.checked(source, shape)?;
        self.push(name.to_owned(), source, 0..rows, shape, ggml_type);
        Ok(())
    }

    fn reshaped(
        &mut self,
        source: &str,
        name: &str,
        shape: &[usize],
        ggml_shape: &[usize],
        ggml_type: GgmlType,
    ) -> Result<(), ConvertError> {
        let rows = self.checked(source, shape)?;
        self.push(name.to_owned(), source, 0..rows, ggml_shape, ggml_type);
        Ok(())
    }

    fn layer_norm(&mut self, source: &str, name: &str, d: usize) -> Result<(), ConvertError> {
        self.whole(&format!("{source}/gamma"), &format!("{name}.weight"), &[d], GgmlType::F32)?;
        self.whole(&format!("{source}/beta"), &format!("{name}.bias"), &[d], GgmlType::F32)
    }

    fn linear(&mut self, source: &str, name: &str, rows: usize, cols: usize) -> Result<(), ConvertError> {
        self.whole(&format!("{source}/weight"), &format!("{name}.weight"), &[rows, cols], GgmlType::F16)?;
        self.whole(&format!("{source}/bias"), &format!("{name}.bias"), &[rows], GgmlType::F32)
    }

    /// Splits a fused projection (`parts` stacked `d`-row blocks) into named `d × d` weights;
    /// `biased` says which parts keep their slice of the fused bias.
    fn split(&mut self, source: &str, names: &[(&str, bool)], d: usize) -> Result<(), ConvertError> {
        let n = names.len();
        let weight = format!("{source}/weight");
        let bias = format!("{source}/bias");
        self.checked(&weight, &[n * d, d])?;
        self.checked(&bias, &[n * d])?;
        for (part, (name, biased)) in names.iter().enumerate() {
            let rows = part * d..(part + 1) * d;
            self.push(format!("{name}.weight"), &weight, rows.clone(), &[d, d], GgmlType::F16);
            if *biased {
                self.push(format!("{name}.bias"), &bias, rows, &[d], GgmlType::F32);
            }
        }
        Ok(())
    }

    fn self_attention(&mut self, src: &str, dst: &str, d: usize) -> Result<(), ConvertError> {
        self.layer_norm(&format!("{src}/self_attention/layer_norm"), &format!("{dst}.attn_ln"), d)?;
        let (q, k, v) = (format!("{dst}.attn.query"), format!("{dst}.attn.key"), format!("{dst}.attn.value"));
        self.split(&format!("{src}/self_attention/linear_0"), &[(&q, true), (&k, false), (&v, true)], d)?;
        self.linear(&format!("{src}/self_attention/linear_1"), &format!("{dst}.attn.out"), d, d)
    }

    fn cross_attention(&mut self, src: &str, dst: &str, d: usize) -> Result<(), ConvertError> {
        self.layer_norm(&format!("{src}/attention/layer_norm"), &format!("{dst}.cross_attn_ln"), d)?;
        self.linear(&format!("{src}/attention/linear_0"), &format!("{dst}.cross_attn.query"), d, d)?;
        let (k, v) = (format!("{dst}.cross_attn.key"), format!("{dst}.cross_attn.value"));
        self.split(&format!("{src}/attention/linear_1"), &[(&k, false), (&v, true)], d)?;
        self.linear(&format!("{src}/attention/linear_2"), &format!("{dst}.cross_attn.out"), d, d)
    }

    fn ffn(&mut self, src: &str, dst: &str, d: usize) -> Result<(), ConvertError> {
        self.layer_norm(&format!("{src}/ffn/layer_norm"), &format!("{dst}.mlp_ln"), d)?;
        let hidden = self.model.require(&format!("{src}/ffn/linear_0/weight"))?.shape.first().copied().unwrap_or(0);
        self.linear(&format!("{src}/ffn/linear_0"), &format!("{dst}.mlp.0"), hidden, d)?;
        let weight = format!("{src}/ffn/linear_1/weight");
        self.whole(&weight, &format!("{dst}.mlp.2.weight"), &[d, hidden], GgmlType::F16)?;
        self.whole(&format!("{src}/ffn/linear_1/bias"), &format!("{dst}.mlp.2.bias"), &[d], GgmlType::F32)
    }
}

/// Converts CTranslate2 float data to the ggml type, little-endian. f16 → f16 is a copy.
fn encode(tensor: &RawTensor, to: GgmlType) -> Vec<u8> {
    if tensor.dtype == Ct2Type::F16 && to == GgmlType::F16 {
        return tensor.bytes.clone();
    }
    let values: Vec<f32> = match tensor.dtype {
        Ct2Type::F32 => tensor.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Ct2Type::F16 => tensor.bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Ct2Type::Bf16 => {
            tensor.bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        // The planner refuses integer (quantized) variables before any data is read.
        Ct2Type::I8 | Ct2Type::I16 | Ct2Type::I32 => Vec::new(),
    };
    match to {
        GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/// Reads the model's vocabulary and returns the ordinary tokens as raw bytes, in id order.
///
/// CTranslate2 stores tokens in GPT-2's byte-level form (each byte drawn as a printable
/// character, `Ġ` for a space); whisper.cpp wants the bytes themselves. Only the tokens below
/// `<|endoftext|>` are written: whisper.cpp numbers the special tokens itself from `n_vocab`,
/// so the converter checks that the model's `<|endoftext|>` sits where whisper.cpp will look.
fn read_vocabulary(dir: &Path, hparams: &WhisperHparams) -> Result<Vec<Vec<u8>>, ConvertError> {
    let (path, tokens) = load_token_strings(dir)?;
    let bad = |reason: String| ConvertError::Vocabulary { path: path.clone(), reason };
    if tokens.len() != hparams.n_vocab {
        return Err(bad(format!("{} tokens, but the model's embedding has {} rows", tokens.len(), hparams.n_vocab)));
    }
    let eot = tokens.iter().position(|t| t == "<|endoftext|>").ok_or_else(|| bad("no <|endoftext|> token".into()))?;
    let expected_eot = if hparams.multilingual() { 50_257 } else { 50_256 };
    if eot != expected_eot {
        return Err(bad(format!(
            "<|endoftext|> is token {eot}; whisper.cpp assumes {expected_eot} for a vocabulary of {}",
            hparams.n_vocab
        )));
    }
    let decoder = byte_decoder();
    tokens[..eot]
        .iter()
        .enumerate()
        .map(|(id, token)| {
            token
                .chars()
                .map(|c| decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| bad(format!("token {id} {token:?} is not byte-level BPE")))
        })
        .collect()
}

/// Finds the token list: `vocabulary.json` (a JSON array), `vocabulary.txt` (one per line) or
/// the `model.vocab` map plus `added_tokens` of a Hugging Face `tokenizer.json`.
fn load_token_strings(dir: &Path) -> Result<(PathBuf, Vec<String>), ConvertError> {
    let read =
        |path: &Path| fs::read_to_string(path).map_err(|source| ConvertError::Io { path: path.to_owned(), source });
    let json_path = dir.join("vocabulary.json");
    if json_path.exists() {
        let text = read(&json_path)?;
        let tokens: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| ConvertError::Vocabulary { path: json_path.clone(), reason: e.to_string() })?;
        return Ok((json_path, tokens));
    }
    let txt_path = dir.join("vocabulary.txt");
    if txt_path.exists() {
        let text = read(&txt_path)?;
        let tokens = text.lines().map(str::to_owned).collect();
        return Ok((txt_path, tokens));
    }
    let tokenizer_path = dir.join("tokenizer.json");
    if tokenizer_path.exists() {
        let text = read(&tokenizer_path)?;
        let tokens = tokens_from_tokenizer_json(&text)
            .map_err(|reason| ConvertError::Vocabulary { path: tokenizer_path.clone(), reason })?;
        return Ok((tokenizer_path, tokens));
    }
    Err(ConvertError::Vocabulary {
        path: dir.to_owned(),
        reason: "no vocabulary.json, vocabulary.txt or tokenizer.json".into(),
    })
}

fn tokens_from_tokenizer_json(text: &str) -> Result<Vec<String>, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut by_id: HashMap<usize, String> = HashMap::new();
    let vocab = json.pointer("/model/vocab").and_then(|v| v.as_object()).ok_or("no model.vocab object")?;
    for (token, id) in vocab {
        let id = id.as_u64().ok_or_else(|| format!("token {token:?} has a non-integer id"))?;
        by_id.insert(id as usize, token.clone());
    }
    for added in json.get("added_tokens").and_then(|v| v.as_array()).into_iter().flatten() {
        if let (Some(id), Some(content)) =
            (added.get("id").and_then(|v| v.as_u64()), added.get("content").and_then(|v| v.as_str()))
        {
            by_id.insert(id as usize, content.to_owned());
        }
    }
    (0..by_id.len())
        .map(|id| by_id.remove(&id).ok_or_else(|| format!("token ids are not contiguous: {id} is missing")))
        .collect()
}

/// GPT-2's byte-level alphabet reversed: printable character → byte. Printable Latin-1 bytes
/// stand for themselves; the other 68 bytes are drawn as U+0100 onwards, in byte order.
fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut next_extra = 0u32;
    for byte in 0..=255u8 {
        let c = if printable(byte) {
            char::from(byte)
        } else {
            let c = char::from_u32(256 + next_extra).unwrap_or(char::REPLACEMENT_CHARACTER);
            next_extra += 1;
            c
        };
        map.insert(c, byte);
    }
    map
}

// ---------------------------------------------------------------------------------------------
// Mel filterbank
// ---------------------------------------------------------------------------------------------

/// The mel filterbank Whisper's front end uses (`n_mels` × `n_fft / 2 + 1`, row-major): Slaney's
/// mel scale (linear below 1 kHz, logarithmic above) with triangles normalised to equal area,
/// as librosa's `filters.mel(sr, n_fft, n_mels)` builds it and Whisper ships in
/// `mel_filters.npz`. Computed in f64 and rounded to f32, as librosa does.
pub fn mel_filters(n_mels: usize, n_fft: usize, sample_rate_hz: f64) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins).map(|i| i as f64 * sample_rate_hz / n_fft as f64).collect();
    let min_mel = hz_to_mel(0.0);
    let max_mel = hz_to_mel(sample_rate_hz / 2.0);
    let mel_points: Vec<f64> =
        (0..n_mels + 2).map(|i| mel_to_hz(min_mel + (max_mel - min_mel) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut weights = vec![0f32; n_mels * n_bins];
    for m in 0..n_mels {
        let (left, center, right) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
        let area_norm = 2.0 / (right - left);
        for (bin, freq) in fft_freqs.iter().enumerate() {
            let rising = (freq - left) / (center - left);
            let falling = (right - freq) / (right - center);
            let w = rising.min(falling).max(0.0);
            weights[m * n_bins + bin] = (w * area_norm) as f32;
        }
    }
    weights
}

const MEL_LINEAR_HZ_PER_MEL: f64 = 200.0 / 3.0;
const MEL_LOG_START_HZ: f64 = 1000.0;
const MEL_LOG_START: f64 = MEL_LOG_START_HZ / MEL_LINEAR_HZ_PER_MEL;

fn mel_log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MEL_LOG_START_HZ {
        MEL_LOG_START + (hz / MEL_LOG_START_HZ).ln() / mel_log_step()
    } else {
        hz / MEL_LINEAR_HZ_PER_MEL
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MEL_LOG_START {
        MEL_LOG_START_HZ * (mel_log_step() * (mel - MEL_LOG_START)).exp()
    } else {
        mel * MEL_LINEAR_HZ_PER_MEL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// A tiny valid model.bin: one f16 variable and one alias.
    fn tiny_model() -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        string(&mut out, "decoder/embeddings/weight");
        out.push(2);
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.push(4);
        out.extend_from_slice(&12u32.to_le_bytes());
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
        out.extend_from_slice(&1u32.to_le_bytes());
        string(&mut out, "decoder/projection/weight");
        string(&mut out, "decoder/embeddings/weight");
        out
    }

    fn index(bytes: &[u8]) -> Result<Ct2Model<Cursor<&[u8]>>, ConvertError> {
        Ct2Model::read_index(Cursor::new(bytes), bytes.len() as u64, Path::new("model.bin"))
    }

    #[test]
    fn index_reads_variables_and_aliases() {
        let bytes = tiny_model();
        let mut model = index(&bytes).expect("valid model");
        let var = model.variable("decoder/projection/weight").expect("alias resolves");
        assert_eq!(var.shape, vec![2, 3]);
        let second_row = model.read_rows("decoder/embeddings/weight", 1..2).expect("rows");
        assert_eq!(encode(&second_row, GgmlType::F32).len(), 12);
        let values: Vec<f32> = encode(&second_row, GgmlType::F32)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = tiny_model();
        for len in 0..bytes.len() {
            let result = index(&bytes[..len]);
            assert!(
                matches!(result, Err(ConvertError::Truncated { .. } | ConvertError::Corrupt { .. })),
                "prefix of {len} bytes was accepted"
            );
        }
    }

    #[test]
    fn corrupt_headers_are_named() {
        let mut bytes = tiny_model();
        bytes[0] = 9;
        assert!(matches!(index(&bytes), Err(ConvertError::Unsupported { .. })));

        let mut bytes = tiny_model();
        // The type id of the only variable (after version, spec, revision, count, name, rank, dims).
        let type_at = 4 + 2 + 12 + 4 + 4 + 2 + 26 + 1 + 8;
        assert_eq!(bytes[type_at], 4);
        bytes[type_at] = 0; // f32 would need 24 bytes, the header says 12
        let err = index(&bytes).err().expect("size mismatch");
        assert!(err.to_string().contains("needs 24"), "{err}");
    }

    #[test]
    fn byte_decoder_covers_every_byte_once() {
        let decoder = byte_decoder();
        assert_eq!(decoder.len(), 256);
        assert_eq!(decoder[&'Ġ'], b' ');
        assert_eq!(decoder[&'Ċ'], b'\n');
        assert_eq!(decoder[&'!'], b'!');
        let mut bytes: Vec<u8> = decoder.values().copied().collect();
        bytes.sort_unstable();
        assert_eq!(bytes, (0..=255).collect::<Vec<u8>>());
    }

    #[test]
    fn mel_scale_round_trips_and_bends_at_1khz() {
        for hz in [0.0, 300.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn mel_filters_are_area_normalised_triangles() {
        let filters = mel_filters(80, 400, 16_000.0);
        assert_eq!(filters.len(), 80 * 201);
        assert!(filters.iter().all(|w| *w >= 0.0));
        // Each triangle's area in Hz (sum × bin width) is 1 up to the sampling of its edges.
        let first_peak = filters[..201].iter().copied().fold(0.0f32, f32::max);
        assert!(first_peak > 0.0);
        assert!(filters[200] == 0.0, "the top bin (8 kHz) is outside the first filter");
    }

    #[test]
    fn tokenizer_json_orders_tokens_by_id() {
        let json = r#"{"model":{"vocab":{"b":1,"a":0}},"added_tokens":[{"id":2,"content":"<|endoftext|>"}]}"#;
        assert_eq!(tokens_from_tokenizer_json(json).expect("valid"), vec!["a", "b", "<|endoftext|>"]);
        let gap = r#"{"model":{"vocab":{"b":2,"a":0}}}"#;
        assert!(tokens_from_tokenizer_json(gap).is_err());
    }
}
