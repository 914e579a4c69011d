//! The i-quant lookup tables as one GPU buffer, and the WGSL constants that locate each table
//! in it.
//!
//! Invariant: the bytes are exactly `localglm_quants::tables` (the same grids the CPU kernels
//! use, SHA-256 checked there), laid out back to back at the offsets [`wgsl_consts`] names; a
//! shader reads byte `o` of the buffer as `tb8(o)`.

use localglm_quants::tables::{
    IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS,
    KVALUES_IQ4NL,
};

/// The tables' bytes (padded to whole u32 words) and their `(WGSL name, byte offset)` list.
pub(crate) fn table_bytes() -> (Vec<u8>, Vec<(&'static str, usize)>) {
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    let mut put = |name: &'static str, data: Vec<u8>| {
        offsets.push((name, bytes.len()));
        bytes.extend_from_slice(&data);
    };
    let u64s = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    put("IQ2XXS_GRID", u64s(&IQ2XXS_GRID));
    put("IQ2XS_GRID", u64s(&IQ2XS_GRID));
    put("IQ2S_GRID", u64s(&IQ2S_GRID));
    put("IQ3XXS_GRID", u32s(&IQ3XXS_GRID));
    put("IQ3S_GRID", u32s(&IQ3S_GRID));
    put(
        "IQ1S_GRID",
        IQ1S_GRID.iter().flatten().map(|&v| v as u8).collect(),
    );
    put("KSIGNS", KSIGNS_IQ2XS.to_vec());
    put(
        "KVALUES_IQ4NL",
        KVALUES_IQ4NL.iter().map(|&v| v as u8).collect(),
    );
    while bytes.len() % 4 != 0 {
        bytes.push(0);
    }
    (bytes, offsets)
}

/// `const NAME: u32 = offset;` for every table.
pub(crate) fn wgsl_consts() -> String {
    let (_, offsets) = table_bytes();
    offsets
        .iter()
        .map(|(name, off)| format!("const {name}: u32 = {off}u;\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_are_back_to_back_and_word_padded() {
        let (bytes, offsets) = super::table_bytes();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(offsets[0], ("IQ2XXS_GRID", 0));
        assert_eq!(offsets[1], ("IQ2XS_GRID", 256 * 8));
        assert_eq!(offsets.last().unwrap().0, "KVALUES_IQ4NL");
        assert!(super::wgsl_consts().contains("const KSIGNS: u32 = "));
    }
}
