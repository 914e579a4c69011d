//! Every WGSL shader of the backend — each weight type's kernels with and without subgroup
//! operations, and every op — translates to Metal Shading Language with naga's MSL writer, the
//! translation wgpu makes when it creates a pipeline on macOS. No Mac runs the tests, so this
//! is what catches a shader Metal would never get (lavapipe compiles them through SPIR-V in the
//! other tests). MSL 2.4 (macOS 12) is the oldest version checked: the subgroup (SIMD-group)
//! functions need 2.1+, the SIMD-group matrices of the matrix-unit kernels 2.3+, and every
//! Apple-silicon Mac runs macOS 11 or later. (`LOCALGLM_SHOW_MSL=<part of a name>` prints
//! those kernels' MSL.)

use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

#[test]
fn every_shader_translates_to_metal_shading_language() {
    let sources = localglm_gpu::all_shader_sources();
    assert!(sources.len() > 22 * 3 * 2, "{} shaders", sources.len());
    for (name, src) in &sources {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        let info = Validator::new(ValidationFlags::all(), Capabilities::all())
            .subgroup_stages(ShaderStages::COMPUTE)
            .subgroup_operations(SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        for lang_version in [(2, 4), (3, 1)] {
            let options = naga::back::msl::Options {
                lang_version,
                ..Default::default()
            };
            let pipeline = naga::back::msl::PipelineOptions {
                entry_point: Some((naga::ShaderStage::Compute, "main".into())),
                ..Default::default()
            };
            let (msl, _) = naga::back::msl::write_string(&module, &info, &options, &pipeline)
                .unwrap_or_else(|e| panic!("{name} to MSL {lang_version:?}: {e}"));
            assert!(msl.contains("kernel void"), "{name}: no kernel in\n{msl}");
            // The matrix-unit kernels on Apple's SIMD-group matrices (MSL 2.3+).
            if name.contains("Coop") {
                assert!(
                    msl.contains("simdgroup_multiply_accumulate"),
                    "{name}: no SIMD-group matrices in\n{msl}"
                );
                if std::env::var("LOCALGLM_SHOW_MSL").is_ok_and(|v| name.contains(&v)) {
                    eprintln!("{msl}");
                }
            }
        }
    }
    eprintln!("{} shaders translated to MSL 2.4 and 3.1", sources.len());
}
