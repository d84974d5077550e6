//! The wasmtime engine plugins run on: one per process, with epoch interruption (a ticker
//! advances the epoch every 10 ms), the pooling allocator and an on-disk cache of compiled
//! components keyed by the component's hash and the engine's settings.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::plugin::PluginError;

/// How often the epoch advances: the granularity of every plugin time budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most linear memory any instance may have (a manifest asks for less; the default is 64 MiB).
pub const MAX_MEMORY: u64 = 256 << 20;

/// The engine and its compile cache.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    fingerprint: String,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine").field("cache_dir", &self.cache_dir).finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// An engine whose compiled components are cached in `cache_dir` (none: compile every time).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<PluginEngine, PluginError> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(500)
            .total_core_instances(1_000)
            .total_memories(1_000)
            .total_tables(1_000)
            .total_stacks(500)
            .max_memory_size(MAX_MEMORY as usize)
            .max_component_instance_size(1 << 20)
            .linear_memory_keep_resident(1 << 20);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 << 10)
            .async_stack_size(2 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config).map_err(|e| PluginError::Runtime(format!("starting wasmtime: {e:#}")))?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        "kith-plugin-engine-1".hash(&mut hasher);
        let fingerprint = format!("{:016x}", hasher.finish());
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("kith-plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| PluginError::Runtime(format!("starting the epoch ticker: {e}")))?;
        if let Some(dir) = &cache_dir {
            let _ = std::fs::create_dir_all(dir);
        }
        Ok(PluginEngine { engine, cache_dir, fingerprint })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a component (or loads it from the cache). The component was validated by
    /// [`inspect`] before it was stored.
    pub fn compile(&self, hash: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        let cached = self.cache_dir.as_ref().map(|dir| dir.join(format!("{hash}-{}.cwasm", self.fingerprint)));
        if let Some(path) = &cached
            && path.exists()
        {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // settings and wasmtime version (both are in its name), into Kith's own cache
            // directory; wasmtime checks the header again and refuses a mismatch.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, path) };
            match loaded {
                Ok(component) => return Ok(component),
                Err(err) => tracing::warn!(path = %path.display(), error = %err, "ignoring a bad cached component"),
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| PluginError::Component(format!("cannot compile: {e:#}")))?;
        if let Some(path) = cached {
            match component.serialize() {
                Ok(artifact) => {
                    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                    if std::fs::write(&tmp, artifact).and_then(|()| std::fs::rename(&tmp, &path)).is_err() {
                        let _ = std::fs::remove_file(&tmp);
                        tracing::warn!(path = %path.display(), "cannot write the compiled component cache");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot serialise a compiled component"),
            }
        }
        Ok(component)
    }
}

/// The SHA-256 of component bytes, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What Kith reads from a component before it compiles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The contract version it was built for: the SDK version recorded in the
    /// `kith:sdk-version` custom section (what the Rust SDK writes), or else the version of the
    /// `kith:plugin` package its imports and exports name (any other toolchain).
    pub sdk_version: (u16, u16, u16),
    /// Whether that came from the custom section.
    pub recorded: bool,
    /// The names of its top-level imports (`kith:plugin/host@1.2.0`, `wasi:cli/stdout@0.2.0`...).
    pub imports: Vec<String>,
    /// The initial size in bytes of its largest linear memory: where a language's runtime
    /// (CPython, SpiderMonkey) keeps its snapshotted heap, so what an instance needs to start.
    pub initial_memory: u64,
}

/// `kith:plugin/NAME@MAJOR.MINOR.PATCH`'s version.
fn contract_version(name: &str) -> Option<(u16, u16, u16)> {
    let (_, version) = name.strip_prefix("kith:plugin/")?.split_once('@')?;
    let mut parts = version.split('.').map(|p| p.parse::<u16>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// Checks that `bytes` is a well-formed component made for Kith and reads the contract version
/// it was built for: the Rust SDK's section, or the `kith:plugin` interfaces it uses.
pub fn inspect(bytes: &[u8]) -> Result<ComponentInfo, PluginError> {
    use wasmparser::{Encoding, Parser, Payload};
    let mut sdk = None;
    let mut contract: Option<(u16, u16, u16)> = None;
    let mut imports = Vec::new();
    let mut is_component = false;
    let mut initial_memory = 0u64;
    // Nesting: 1 is the component itself (nested modules and components open and close theirs).
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| PluginError::Component(format!("not a valid wasm component: {e}")))?;
        match payload {
            Payload::Version { encoding, .. } => {
                depth += 1;
                if depth == 1 && encoding == Encoding::Component {
                    is_component = true;
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(section) if section.name() == "kith:sdk-version" => {
                let data = section.data();
                if data.len() != 6 {
                    return Err(PluginError::Component("the kith:sdk-version section is malformed".into()));
                }
                let part = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
                sdk = Some((part(0), part(2), part(4)));
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory =
                        memory.map_err(|e| PluginError::Component(format!("not a valid wasm component: {e}")))?;
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    initial_memory = initial_memory.max(memory.initial.saturating_mul(page));
                }
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import =
                        import.map_err(|e| PluginError::Component(format!("not a valid wasm component: {e}")))?;
                    contract = contract.max(contract_version(import.name.name));
                    imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export =
                        export.map_err(|e| PluginError::Component(format!("not a valid wasm component: {e}")))?;
                    contract = contract.max(contract_version(export.name.name));
                }
            }
            _ => {}
        }
    }
    if !is_component {
        return Err(PluginError::Component(
            "this is a core wasm module, not a component: build the plugin for wasm32-wasip2".into(),
        ));
    }
    match (sdk, contract) {
        (Some(sdk_version), _) => Ok(ComponentInfo { sdk_version, recorded: true, imports, initial_memory }),
        (None, Some(sdk_version)) => Ok(ComponentInfo { sdk_version, recorded: false, imports, initial_memory }),
        (None, None) => Err(PluginError::Component(
            "the component neither records a Kith SDK version nor imports or exports a `kith:plugin` interface: \
             build it against a world of schemas/wit (`base`), with kith-plugin-sdk or a component toolchain"
                .into(),
        )),
    }
}
