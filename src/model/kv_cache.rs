//! Preallocated key/value cache for batched decoding.
//!
//! Each layer owns [B, kv_heads, max_len, head_dim] buffers written in place (narrow + copy_),
//! so a decode step never reallocates or concatenates. Rows are left-aligned in time: slot j
//! is the j-th token fed for every row; `valid` marks which slots hold real (non-pad) tokens
//! and `next_pos` is each row's next position id, so left padding changes nothing.
use tch::{Device, Kind, Tensor};

pub struct KvCache {
    pub k: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// [B, max_len] bool: slot holds a real token.
    pub valid: Tensor,
    /// [B] i64: position id the next real token of each row gets.
    pub next_pos: Tensor,
    /// Slots filled so far (same for every row).
    pub len: i64,
    pub max_len: i64,
}

impl KvCache {
    /// Empty cache for `batch` rows and up to `max_len` tokens.
    pub fn new(
        layers: usize,
        batch: i64,
        kv_heads: i64,
        head_dim: i64,
        max_len: i64,
        kind: Kind,
        device: Device,
    ) -> Self {
        // Slots past `len` are never read, so the buffers need no zeroing.
        let shape = [batch, kv_heads, max_len, head_dim];
        Self {
            k: (0..layers)
                .map(|_| Tensor::empty(shape, (kind, device)))
                .collect(),
            v: (0..layers)
                .map(|_| Tensor::empty(shape, (kind, device)))
                .collect(),
            valid: Tensor::zeros([batch, max_len], (Kind::Bool, device)),
            next_pos: Tensor::zeros([batch], (Kind::Int64, device)),
            len: 0,
            max_len,
        }
    }

    pub fn batch(&self) -> i64 {
        self.valid.size()[0]
    }

    /// Writes layer `layer`'s new keys/values [B, kv, T, hd] at slots len..len+T and returns
    /// views over all filled slots (0..len+T). `len` itself moves on in `advance`.
    pub fn write(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> (Tensor, Tensor) {
        let t = k.size()[2];
        self.k[layer].narrow(2, self.len, t).copy_(k);
        self.v[layer].narrow(2, self.len, t).copy_(v);
        (
            self.k[layer].narrow(2, 0, self.len + t),
            self.v[layer].narrow(2, 0, self.len + t),
        )
    }

    /// A cache whose rows are `rows` (indices into this one) with room for `max_len` slots;
    /// used to share one prompt's prefix among its samples and to drop finished rows.
    pub fn select_rows(&self, rows: &Tensor, max_len: i64) -> KvCache {
        let rows = rows.to_device(self.valid.device());
        let n = rows.size()[0];
        let copy = |src: &Tensor| {
            let s = src.size();
            let dst = Tensor::empty([n, s[1], max_len, s[3]], (src.kind(), src.device()));
            dst.narrow(2, 0, self.len)
                .copy_(&src.narrow(2, 0, self.len).index_select(0, &rows));
            dst
        };
        let valid = Tensor::zeros([n, max_len], (Kind::Bool, self.valid.device()));
        valid
            .narrow(1, 0, self.len)
            .copy_(&self.valid.narrow(1, 0, self.len).index_select(0, &rows));
        KvCache {
            k: self.k.iter().map(copy).collect(),
            v: self.v.iter().map(copy).collect(),
            valid,
            next_pos: self.next_pos.index_select(0, &rows),
            len: self.len,
            max_len,
        }
    }
}
