//! Fuzzes the GGUF header parser: any input must parse or fail with an error, and every tensor
//! of a successful parse must lie inside the input (the invariant `GgufFile::tensor_bytes`
//! relies on). Run: `cargo fuzz run parse_header fuzz/corpus/parse_header` (see README).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = localglm_gguf::parse_header(data) {
        for t in &h.tensors {
            let start = (h.data_offset + t.offset) as usize;
            let end = start + t.size_bytes as usize;
            assert!(end <= data.len(), "tensor {} ends past the input", t.name);
            assert_eq!(t.n_elems, t.dims.iter().product::<u64>());
        }
    }
});
