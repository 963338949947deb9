//! Where the frozen base weights come from: safetensors files (one file or shards listed
//! in model.safetensors.index.json, stored f32/bf16/f16) or random normals for `--random-init`.
//!
//! Every tensor is checked against the shape the config implies; a missing or mis-shaped
//! tensor is an error naming the tensor and both shapes.
use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Memory-mapped safetensors files of a model directory and which file holds each tensor.
pub struct SafetensorFiles {
    dir: PathBuf,
    names: Vec<String>,
    mmaps: Vec<Mmap>,
    index: Option<HashMap<String, usize>>,
}

impl SafetensorFiles {
    /// Opens `model.safetensors.index.json`'s shards, or else `model.safetensors`.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let (files, index) = if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .with_context(|| format!("cannot read {}", index_path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", index_path.display()))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .with_context(|| format!("{} has no weight_map", index_path.display()))?;
            let mut files: Vec<String> = map
                .values()
                .filter_map(|f| f.as_str().map(String::from))
                .collect();
            files.sort();
            files.dedup();
            let idx: HashMap<String, usize> = map
                .iter()
                .filter_map(|(k, f)| {
                    Some((
                        k.clone(),
                        files.iter().position(|x| Some(x.as_str()) == f.as_str())?,
                    ))
                })
                .collect();
            (files, Some(idx))
        } else if single.exists() {
            (vec!["model.safetensors".to_string()], None)
        } else {
            bail!(
                "no model.safetensors or model.safetensors.index.json in {} (or use --random-init)",
                dir.display()
            );
        };
        let mut mmaps = Vec::new();
        for f in &files {
            let p = dir.join(f);
            let file = std::fs::File::open(&p)
                .with_context(|| format!("cannot open weight file {}", p.display()))?;
            // SAFETY: the file is opened read-only and not modified while the model loads.
            mmaps.push(
                unsafe { Mmap::map(&file) }
                    .with_context(|| format!("cannot map {}", p.display()))?,
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            names: files,
            mmaps,
            index,
        })
    }

    /// Parsed views over every file; they borrow the maps.
    pub fn parse(&self) -> Result<Vec<SafeTensors<'_>>> {
        self.mmaps
            .iter()
            .zip(&self.names)
            .map(|(m, n)| {
                // One line that names the file and the way to a good copy: a bare
                // "MetadataIncompleteBuffer" tells a user neither.
                SafeTensors::deserialize(m).map_err(|e| {
                    anyhow::anyhow!(
                        "{} is not a valid safetensors file ({e:?}): it is truncated or corrupt; \
                         re-create it (scripts/setup.sh for the default models, or run \
                         `stylerl import-gguf` again)",
                        self.dir.join(n).display()
                    )
                })
            })
            .collect()
    }
}

/// Normals above this many values are tiled from one shared random block.
const TILE: i64 = 1 << 22;

/// N(0, std²) values of `shape`. Large tensors (a 3B model has billions of values, and
/// drawing them one by one on CPU takes minutes) repeat one shared random block of TILE + 1
/// values from a random offset: right statistics for speed and memory work, in seconds.
/// Small tensors (tests) are drawn in full.
fn random_normal(
    shape: &[i64],
    std: f64,
    kind: Kind,
    device: Device,
    block: &OnceCell<Tensor>,
) -> Tensor {
    let n: i64 = shape.iter().product();
    if n <= TILE {
        return Tensor::randn(shape, (Kind::Float, device)).to_kind(kind) * std;
    }
    let block = block
        .get_or_init(|| (Tensor::randn([TILE + 1], (Kind::Float, device)) * std).to_kind(kind));
    let offset = Tensor::randint(TILE, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]);
    let out = Tensor::empty([n], (kind, device));
    let mut done = 0;
    while done < n {
        let start = if done == 0 { offset } else { 0 };
        let len = (TILE + 1 - start).min(n - done);
        out.narrow(0, done, len).copy_(&block.narrow(0, start, len));
        done += len;
    }
    out.reshape(shape)
}

#[derive(Clone, Copy)]
enum Init {
    Normal,
    Ones,
    Zeros,
}

/// Hands out named tensors of a given shape, converted to the model's dtype and device.
pub enum Weights<'a> {
    Files {
        files: &'a SafetensorFiles,
        st: Vec<SafeTensors<'a>>,
        device: Device,
        kind: Kind,
        /// Names handed out so far, to find tensors a model did not use.
        used: RefCell<HashSet<String>>,
    },
    Random {
        /// Shared block large tensors are tiled from (see `random_normal`).
        block: OnceCell<Tensor>,
        std: f64,
        device: Device,
        kind: Kind,
    },
}

impl<'a> Weights<'a> {
    /// Random weights: N(0, std²) matrices, ones for norms, zeros for biases.
    pub fn random(std: f64, device: Device, kind: Kind) -> Self {
        Weights::Random {
            block: OnceCell::new(),
            std,
            device,
            kind,
        }
    }

    pub fn from_files(files: &'a SafetensorFiles, device: Device, kind: Kind) -> Result<Self> {
        Ok(Weights::Files {
            files,
            st: files.parse()?,
            device,
            kind,
            used: RefCell::new(HashSet::new()),
        })
    }

    fn find(&self, name: &str) -> Option<safetensors::tensor::TensorView<'a>> {
        match self {
            Weights::Files { files, st, .. } => match &files.index {
                Some(idx) => idx.get(name).and_then(|&i| st[i].tensor(name).ok()),
                None => st.iter().find_map(|s| s.tensor(name).ok()),
            },
            Weights::Random { .. } => None,
        }
    }

    /// True when the files hold `name` (always false for random weights).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Tensors in the files that no `get` asked for, sorted (none for random weights).
    pub fn unused(&self) -> Vec<String> {
        match self {
            Weights::Files { st, used, .. } => {
                let used = used.borrow();
                let mut v: Vec<String> = st
                    .iter()
                    .flat_map(|s| s.names())
                    .filter(|n| !used.contains(n.as_str()))
                    .cloned()
                    .collect();
                v.sort();
                v.dedup();
                v
            }
            Weights::Random { .. } => vec![],
        }
    }

    /// A frozen tensor `name` of `shape`; random init draws N(0, std²).
    pub fn get(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        self.load(name, shape, Init::Normal)
    }

    /// Like `get`, but random init gives ones (norm weights).
    pub fn get_ones(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        self.load(name, shape, Init::Ones)
    }

    /// Like `get`, but random init gives zeros (biases).
    pub fn get_zeros(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        self.load(name, shape, Init::Zeros)
    }

    fn load(&self, name: &str, shape: &[i64], init: Init) -> Result<Tensor> {
        match self {
            Weights::Random {
                std,
                device,
                kind,
                block,
            } => Ok(match init {
                Init::Ones => Tensor::ones(shape, (*kind, *device)),
                Init::Zeros => Tensor::zeros(shape, (*kind, *device)),
                Init::Normal => random_normal(shape, *std, *kind, *device, block),
            }),
            Weights::Files {
                device, kind, used, ..
            } => {
                used.borrow_mut().insert(name.to_string());
                let view = self.find(name).with_context(|| {
                    format!("missing tensor '{name}' (expected shape {shape:?})")
                })?;
                let got: Vec<i64> = view.shape().iter().map(|&x| x as i64).collect();
                if got != shape {
                    bail!("tensor '{name}' has shape {got:?}, expected {shape:?} from config.json");
                }
                let src_kind = match view.dtype() {
                    Dtype::F32 => Kind::Float,
                    Dtype::BF16 => Kind::BFloat16,
                    Dtype::F16 => Kind::Half,
                    d => bail!("tensor '{name}' is stored as {d:?}; supported: F32, BF16, F16"),
                };
                let t = Tensor::f_from_data_size(view.data(), &got, src_kind)
                    .with_context(|| format!("cannot read tensor '{name}'"))?;
                Ok(t.to_kind(*kind).to_device(*device).set_requires_grad(false))
            }
        }
    }
}
