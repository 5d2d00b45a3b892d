//! The builder: a Dockerfile's steps run one after the other, each a commit of the image, as
//! Docker's classic builder does (moby `builder/dockerfile`).
//!
//! ```text
//! FROM busybox        image A   (the base, from the store)
//! ENV A=1             image B   config changed, history `/bin/sh -c #(nop)  ENV A=1`, no layer
//! RUN touch /x        image C   a container on B; its upper dir is the new layer
//! COPY f /f           image D   the files copied into a fresh dir, which becomes the layer
//! ```
//!
//! Every step's image is kept (untagged) and remembered in the layer cache under the key
//! (parent image ID, instruction, and for `COPY`/`ADD` the hash of the copied files), so an
//! unchanged rebuild finds each step's image again instead of running it (`Using cache`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use oci_spec::image::{
    Config, Descriptor, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

use crate::build::args::BuildArgs;
use crate::build::copy;
use crate::build::instructions::{self, CommandLine, Instruction, Kind, Stage, Stages};
use crate::build::parser;
use crate::build::shell::Lex;
use crate::cli::Exit;
use crate::container::Paths;
use crate::image::commit::{LayerStep, commit_layer_with};
use crate::image::reference::Reference;
use crate::image::store::{Image, Store, hex};

/// Docker's default `PATH`, given to a stage whose base image sets none (`scratch`).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `minidock build` takes (`docker build`'s flags of the same names).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory; `None` for `-` (a Dockerfile on stdin, no files to copy).
    pub context: Option<PathBuf>,
    /// The Dockerfile's text and the name errors give it (`Dockerfile`).
    pub dockerfile: String,
    pub dockerfile_name: String,
    /// `-t`: the names the result gets.
    pub tags: Vec<Reference>,
    /// `--build-arg KEY=VALUE` (`KEY` alone: the value from the environment, or unset).
    pub build_args: Vec<(String, Option<String>)>,
    pub no_cache: bool,
    /// `--target`: the stage to build (default the last).
    pub target: Option<String>,
    /// `--label KEY=VALUE`: added to the result as a last `LABEL` step, as Docker does.
    pub labels: Vec<(String, String)>,
    /// `-q`: nothing printed but the result's ID (RUN output included).
    pub quiet: bool,
    /// `--network` of the `RUN` containers, as `minidock run` takes it (default `none`).
    pub network: Option<String>,
    /// `--pull`: pull every base image named by a `FROM`, even one the store has.
    pub pull: bool,
    /// Where `RUN` steps' stdout and stderr go besides their logs (`None`: this process's
    /// own stdout and stderr). The daemon gives the pipe its build output goes to.
    pub run_output: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

/// The image a stage has built so far: its config and layers, and its ID once committed
/// (`None` for `FROM scratch` before its first step).
#[derive(Debug, Clone)]
pub(crate) struct CurrentImage {
    config: ImageConfiguration,
    /// Docker's config fields beyond the OCI ones (`Healthcheck`, `OnBuild`, `Shell`).
    extra: serde_json::Map<String, serde_json::Value>,
    layers: Vec<Descriptor>,
    id: Option<String>,
}

impl CurrentImage {
    /// The config's `WorkingDir` (`/` when unset).
    pub(crate) fn working_dir(&self) -> String {
        self.config
            .config()
            .as_ref()
            .and_then(|c| c.working_dir().clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".into())
    }
}

/// One stage's build state.
struct StageState {
    current: CurrentImage,
    args: BuildArgs,
    /// The shell of shell-form commands (`SHELL`; default `/bin/sh -c`).
    shell: Vec<String>,
    /// Whether this stage's `CMD` ran (an `ENTRYPOINT` clears the `Cmd` otherwise).
    cmd_set: bool,
}

/// The builder's shared state: the store, the step counter, the output.
pub struct Builder<'a> {
    pub(crate) paths: &'a Paths,
    pub(crate) store: Store,
    pub(crate) options: &'a BuildOptions,
    out: &'a mut dyn Write,
    step: usize,
    total: usize,
    lex: Lex,
    /// The images of the stages built so far, by index.
    built: HashMap<usize, CurrentImage>,
    /// The stages' `AS` names, by index.
    names: Vec<Option<String>>,
    /// Whether `ONBUILD` triggers are running: their steps print no ` ---> <id>` line.
    in_triggers: bool,
    /// The store's images by ID: the ones the build has met (its bases, its cache hits, its
    /// own commits), and every image of the store once a lookup by ID missed them (a store
    /// lookup by ID reads every image, so it is done at most once).
    by_id: std::cell::RefCell<HashMap<String, Image>>,
    /// Whether `by_id` has every image of the store.
    scanned: std::cell::Cell<bool>,
    /// `index.json`'s entries, read on the first cache hit (the images of cache hits are
    /// found through their manifests there; the build's own commits are in `by_id`).
    entries: std::cell::RefCell<Option<Vec<Descriptor>>>,
}

// ANCHOR: build
/// Builds the Dockerfile of `options`, printing the classic builder's lines to `out`
/// (`Step 1/3 : FROM busybox`, ` ---> 1a2b3c4d5e6f`, `Successfully built …`). Returns the
/// resulting image (tagged with `options.tags`). Errors: a Dockerfile that does not parse
/// (one line: file, line, message), a missing base image, a step that fails (a `RUN` exiting
/// non-zero gives Docker's message and its exit status), an instruction not supported.
pub fn build(paths: &Paths, options: &BuildOptions, out: &mut dyn Write) -> Result<Image> {
    let df = parser::parse(&options.dockerfile)
        .map_err(|e| anyhow::anyhow!(e.report(&options.dockerfile_name)))?;
    let mut stages = instructions::stages(&df)
        .map_err(|e| anyhow::anyhow!(e.report(&options.dockerfile_name)))?;
    if stages.stages.is_empty() {
        bail!("no build stage in the Dockerfile");
    }
    let lex = Lex::new(df.escape);
    let mut args = BuildArgs::new(options.build_args.clone());
    args.add_meta_args(&stages.meta_decls(), &lex)?;
    let target = match &options.target {
        Some(name) => stages
            .by_name(name)
            .with_context(|| format!("failed to reach build target {name} in Dockerfile"))?,
        None => stages.stages.len() - 1,
    };
    add_label_step(&mut stages.stages[target], &options.labels);
    let needed = stages.needed(target, &args.meta(), &lex)?;
    crate::state::private_dir(&paths.root)?;
    let store = Store::open(&paths.root)?;
    let _lease = store.lease()?;
    let mut builder = Builder::new(paths, store, options, out, &stages, lex);
    builder.meta_steps(&stages)?;
    for (i, stage) in stages.stages.iter().enumerate().take(target + 1) {
        if !needed.contains(&i) {
            builder.step += 1 + stage.commands.len();
            continue;
        }
        let current = builder.build_stage(&stages, i, &mut args)?;
        builder.built.insert(i, current);
    }
    builder.finish(target, &args)
}
// ANCHOR_END: build

impl<'a> Builder<'a> {
    /// A builder at step 0 of `stages`, with nothing built yet.
    fn new(
        paths: &'a Paths,
        store: Store,
        options: &'a BuildOptions,
        out: &'a mut dyn Write,
        stages: &Stages,
        lex: Lex,
    ) -> Builder<'a> {
        Builder {
            paths,
            store,
            options,
            out,
            step: 0,
            total: stages.steps(),
            lex,
            built: HashMap::new(),
            names: stages.stages.iter().map(|s| s.name.clone()).collect(),
            in_triggers: false,
            by_id: std::cell::RefCell::new(HashMap::new()),
            scanned: std::cell::Cell::new(false),
            entries: std::cell::RefCell::new(None),
        }
    }
}

/// `--label`s become one more `LABEL` instruction at the end of the target stage, as the
/// classic builder appends them to the Dockerfile.
fn add_label_step(stage: &mut Stage, labels: &[(String, String)]) {
    if labels.is_empty() {
        return;
    }
    let mut sorted = labels.to_vec();
    sorted.sort();
    let words: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{}='{v}'", crate::build::shell::go_quote(k)))
        .collect();
    let kvs = sorted
        .iter()
        .map(|(k, v)| instructions::KeyValue {
            key: k.clone(),
            value: v.clone(),
            no_delim: false,
        })
        .collect();
    stage.commands.push(Instruction {
        line: 0,
        end_line: 0,
        original: format!("LABEL {}", words.join(" ")),
        kind: Kind::Label(kvs),
    });
}

impl Builder<'_> {
    /// Prints a line unless `-q`.
    pub(crate) fn say(&mut self, line: &str) -> Result<()> {
        if !self.options.quiet {
            writeln!(self.out, "{line}").context("writing the build output")?;
            self.out.flush().context("writing the build output")?;
        }
        Ok(())
    }

    fn announce(&mut self, original: &str) -> Result<()> {
        self.step += 1;
        let line = format!("Step {}/{} : {original}", self.step, self.total);
        self.say(&line)
    }

    /// The `ARG`s before the first `FROM`: announced, nothing committed.
    fn meta_steps(&mut self, stages: &Stages) -> Result<()> {
        for i in &stages.meta_args {
            self.announce(&i.original)?;
        }
        Ok(())
    }

    /// Builds stage `i`: its `FROM`, then each instruction.
    fn build_stage(
        &mut self,
        stages: &Stages,
        i: usize,
        args: &mut BuildArgs,
    ) -> Result<CurrentImage> {
        let stage = &stages.stages[i];
        self.announce(&stage.original)?;
        let base = self.lex.process_word(&stage.base, &args.meta())?;
        if let Some(platform) = &stage.platform {
            let platform = self.lex.process_word(platform, &args.meta())?;
            let here = format!("linux/{}", oci_spec::image::Arch::default());
            if platform != here && platform != "$BUILDPLATFORM" && platform != "$TARGETPLATFORM" {
                bail!("FROM --platform={platform} is not supported: only {here} is");
            }
        }
        let current = self.base(stages, i, &base)?;
        let shell = extra_list(&current.extra, "Shell")
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let mut state = StageState {
            current,
            args: args.for_stage(),
            shell,
            cmd_set: false,
        };
        self.in_triggers = true;
        let triggers = self.run_triggers(&mut state);
        self.in_triggers = false;
        triggers?;
        let id = state.current.id.as_deref().map(short).unwrap_or_default();
        self.say(&format!(" ---> {id}"))?;
        for command in &stage.commands {
            self.announce(&command.original)?;
            self.step_one(&mut state, command)
                .with_context(|| format!("step {}: {}", self.step, command.original))?;
        }
        args.merge_referenced(&state.args);
        Ok(state.current)
    }

    /// The image a `FROM` names: an earlier stage, `scratch`, or an image in the store. The
    /// stage's environment gets Docker's default `PATH` when the base sets none.
    fn base(&mut self, stages: &Stages, i: usize, base: &str) -> Result<CurrentImage> {
        let earlier = stages.by_name(base).filter(|&j| j < i);
        let mut current = if let Some(j) = earlier {
            self.built
                .get(&j)
                .cloned()
                .context("the stage was not built")?
        } else if base.eq_ignore_ascii_case("scratch") {
            scratch()?
        } else {
            from_image(&self.base_image(base)?)
        };
        let mut config = current.config.config().clone().unwrap_or_default();
        let mut env = config.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(DEFAULT_PATH.to_owned());
            config.set_env(Some(env));
            current.config.set_config(Some(config));
        }
        Ok(current)
    }

    /// A `FROM` image: from the store, else (or always with `--pull`) pulled first, as the
    /// classic builder pulls a missing base.
    fn base_image(&mut self, base: &str) -> Result<Image> {
        if !self.options.pull
            && let Ok(image) = self.store.resolve(base)
        {
            self.known(&image);
            return Ok(image);
        }
        let reference = Reference::parse(base)
            .with_context(|| format!("invalid reference format: {base:?}"))?;
        use crate::registry::{PullOptions, cli::client_options, progress::Progress};
        let options = PullOptions {
            platform: None,
            client: client_options(reference.domain(), &[])?,
            jobs: 0,
            unpack: true,
        };
        let progress = Progress::new(true);
        let pulled = crate::registry::pull(&self.store, &reference, &options, &progress)
            .with_context(|| format!("pulling the base image {base}"))?;
        self.say(&format!(
            "{}: Pulling from {}",
            reference.tag().unwrap_or("latest"),
            reference.path()
        ))?;
        self.say(&format!("Digest: {}", pulled.digest))?;
        self.say(&format!(
            "Status: {} for {}",
            if pulled.changed {
                "Downloaded newer image"
            } else {
                "Image is up to date"
            },
            pulled.name.familiar()
        ))?;
        let image = self.store.resolve(base)?;
        self.known(&image);
        Ok(image)
    }

    /// The base image's `ONBUILD` triggers, run as the stage's first steps (moby's
    /// `processOnBuild`): `# Executing N build trigger(s)`, then each trigger as an
    /// instruction without a `Step` line (the `FROM`'s ` ---> <id>` line follows them). The
    /// stage's image keeps no triggers (`OnBuild` is removed, as moby's `initializeStage`
    /// sets it to nil).
    fn run_triggers(&mut self, state: &mut StageState) -> Result<()> {
        let Some(triggers) = extra_list(&state.current.extra, "OnBuild") else {
            return Ok(());
        };
        if triggers.is_empty() {
            return Ok(());
        }
        let word = if triggers.len() > 1 {
            "triggers"
        } else {
            "trigger"
        };
        self.say(&format!("# Executing {} build {word}", triggers.len()))?;
        state.current.extra.remove("OnBuild");
        for trigger in &triggers {
            let report = |e: parser::ParseError| anyhow::anyhow!(e.report("ONBUILD trigger"));
            let df = parser::parse(trigger).map_err(report)?;
            for command in &instructions::trigger(&df).map_err(report)? {
                self.step_one(state, command)
                    .with_context(|| format!("ONBUILD trigger {trigger:?}"))?;
            }
        }
        Ok(())
    }

    /// `HEALTHCHECK`: the config's `Healthcheck` (Docker's `HealthConfig`), with moby's note
    /// when it replaces an earlier check.
    fn healthcheck(
        &mut self,
        current: &mut CurrentImage,
        health: &instructions::Health,
    ) -> Result<()> {
        if let Some(old) = current.extra.get("Healthcheck")
            && let Some(test) = old.get("Test").and_then(|t| t.as_array())
            && test
                .first()
                .and_then(|t| t.as_str())
                .is_some_and(|t| t != "NONE")
        {
            let words: Vec<&str> = test.iter().filter_map(|t| t.as_str()).collect();
            self.say(&format!(
                "Note: overriding previous HEALTHCHECK: [{}]",
                words.join(" ")
            ))?;
        }
        current
            .extra
            .insert("Healthcheck".into(), health.config_json());
        Ok(())
    }

    /// Runs one instruction on the stage's image.
    fn step_one(&mut self, state: &mut StageState, command: &Instruction) -> Result<()> {
        let env = env_of(&state.current.config);
        let kind = command
            .kind
            .expand(&self.lex, &state.args.expansion_env(&env))?;
        match &kind {
            Kind::Run(cmd) => return self.run_step(state, cmd),
            Kind::Copy(spec) | Kind::Add(spec) => {
                let add = matches!(kind, Kind::Add(_));
                return copy::copy_step(self, state_parts(state), spec, add);
            }
            _ => {}
        }
        let mut config = state.current.config.config().clone().unwrap_or_default();
        let comment = kind.commit_comment().unwrap_or_default();
        let mut upper = None;
        match &kind {
            Kind::Arg(decls) => {
                for d in decls {
                    state.args.declare(&d.key, d.default.clone());
                }
            }
            Kind::Shell(shell) => {
                state.shell = shell.clone();
                state
                    .current
                    .extra
                    .insert("Shell".into(), serde_json::json!(shell));
            }
            Kind::Onbuild(trigger) => {
                let mut triggers = extra_list(&state.current.extra, "OnBuild").unwrap_or_default();
                triggers.push(trigger.clone());
                state
                    .current
                    .extra
                    .insert("OnBuild".into(), serde_json::json!(triggers));
            }
            Kind::Healthcheck(health) => self.healthcheck(&mut state.current, health)?,
            Kind::Workdir(dir) => {
                let dir = workdir(config.working_dir().as_deref(), dir);
                config.set_working_dir(Some(dir.clone()));
                upper = self.workdir_layer(&state.current, &dir)?;
            }
            _ => apply(&mut config, &kind, &state.shell, &mut state.cmd_set)?,
        }
        let created_by = match &kind {
            Kind::Workdir(_) => {
                let dir = config.working_dir().clone().unwrap_or_default();
                nop_single(&state.shell, &format!("WORKDIR {dir}"))
            }
            Kind::Cmd(c) => nop_command("CMD", &state.shell, c),
            Kind::Healthcheck(h) => {
                instructions::nop_created_by(&state.shell, &format!("HEALTHCHECK {}", h.go_q()))
            }
            Kind::Entrypoint(c) => nop_command(
                "ENTRYPOINT",
                &state.shell,
                c.as_ref().unwrap_or(&CommandLine {
                    args: vec![],
                    prepend_shell: false,
                    files: vec![],
                }),
            ),
            _ => instructions::nop_created_by(&state.shell, &comment),
        };
        if let Kind::Maintainer(m) = &kind {
            state.current.config.set_author(Some(m.clone()));
        }
        state.current.config.set_config(Some(config));
        let key = created_by.clone();
        let dir = upper.as_ref().map(|d: &TempDir| d.path.clone());
        self.commit_step(&mut state.current, &key, dir.as_deref(), &created_by)
    }

    /// `WORKDIR`'s directory, when the image lacks it: a fresh dir holding it (0755), which
    /// becomes the step's layer, as Docker creates the directory in the step's container.
    fn workdir_layer(&self, current: &CurrentImage, dir: &str) -> Result<Option<TempDir>> {
        if self.exists_in(current, dir)? {
            return Ok(None);
        }
        let tmp = TempDir::new(&self.paths.root)?;
        let path = tmp.path.join(dir.trim_start_matches('/'));
        std::fs::create_dir_all(&path).with_context(|| format!("mkdir {}", path.display()))?;
        Ok(Some(tmp))
    }

    /// The image `COPY --from=NAME` reads: an earlier stage by name or index, else an image
    /// in the store.
    pub(crate) fn copy_source_image(&mut self, name: &str) -> Result<Image> {
        let lower = name.to_lowercase();
        let stage = match name.parse::<usize>() {
            Ok(i) => Some(i),
            Err(_) => self.names.iter().position(|n| n.as_deref() == Some(&lower)),
        };
        let current = match stage {
            Some(i) => self
                .built
                .get(&i)
                .cloned()
                .with_context(|| format!("invalid from flag value {name}: stage not built"))?,
            None => {
                let image = self.store.resolve(name).with_context(|| {
                    format!("invalid from flag value {name}: the image is not in the store")
                })?;
                return Ok(image);
            }
        };
        let mut current = current;
        let id = self.ensure_committed(&mut current)?;
        self.image(&id)
    }

    /// The bytes of the file `path` in the image's layers (`None`: no such file).
    pub(crate) fn read_in(&self, current: &CurrentImage, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(id) = &current.id else {
            return Ok(None);
        };
        let image = self.image(id)?;
        let rel = path.trim_start_matches('/');
        for layer in self.store.unpacked_layers(&image)?.iter().rev() {
            let p = layer.join(rel);
            if let Ok(meta) = std::fs::symlink_metadata(&p) {
                if !meta.is_file() {
                    return Ok(None);
                }
                let bytes =
                    std::fs::read(&p).with_context(|| format!("reading {path} in the image"))?;
                return Ok(Some(bytes));
            }
            if let Some(name) = p.file_name().and_then(|n| n.to_str())
                && p.with_file_name(format!(".wh.{name}")).exists()
            {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Whether `path` exists in the image's layers.
    pub(crate) fn exists_in(&self, current: &CurrentImage, path: &str) -> Result<bool> {
        Ok(self.lookup(current, path)?.is_some())
    }

    /// Whether `path` is a directory in the image's layers.
    pub(crate) fn is_dir_in(&self, current: &CurrentImage, path: &str) -> Result<bool> {
        Ok(self.lookup(current, path)?.is_some_and(|m| m.is_dir()))
    }

    /// `path`'s metadata in the image's layers: the topmost layer that has it, or a whiteout
    /// of it, decides.
    fn lookup(&self, current: &CurrentImage, path: &str) -> Result<Option<std::fs::Metadata>> {
        let Some(id) = &current.id else {
            return Ok(None);
        };
        let image = self.image(id)?;
        let rel = path.trim_start_matches('/');
        for layer in self.store.unpacked_layers(&image)?.iter().rev() {
            let p = layer.join(rel.trim_end_matches('/'));
            if let Ok(meta) = std::fs::symlink_metadata(&p) {
                return Ok(Some(meta));
            }
            if let Some(name) = p.file_name().and_then(|n| n.to_str())
                && p.with_file_name(format!(".wh.{name}")).exists()
            {
                return Ok(None);
            }
        }
        Ok(None)
    }

    // ANCHOR: commit_step
    /// Commits the step: from the layer cache when an image was made before from the same
    /// parent by the same `key` (` ---> Using cache`), else a new image of `current`'s config
    /// with `upper` as its layer. `current` becomes the step's image.
    pub(crate) fn commit_step(
        &mut self,
        current: &mut CurrentImage,
        key: &str,
        upper: Option<&Path>,
        created_by: &str,
    ) -> Result<()> {
        if self.use_cache(current, key)? {
            return Ok(());
        }
        let cache_key = cache_key(current.id.as_deref(), key);
        let step = LayerStep {
            upper,
            history: HistoryBuilder::default().created_by(created_by.to_owned()),
            created: SystemTime::now(),
        };
        let image = commit_layer_with(
            &self.store,
            &current.layers,
            current.config.clone(),
            &current.extra,
            step,
            &[],
        )?;
        if let Some(parent) = &current.id {
            self.store.set_parent(&image.id, parent)?;
        }
        self.known(&image);
        self.remember(&cache_key, &image)?;
        self.say_id(&image)?;
        *current = from_image(&image);
        Ok(())
    }
    // ANCHOR_END: commit_step

    /// The cached half of [`Builder::commit_step`]: when the layer cache has an image made
    /// from `current` by the step `key` (and `--no-cache` is not given), says ` ---> Using
    /// cache`, makes it `current` and returns true.
    pub(crate) fn use_cache(&mut self, current: &mut CurrentImage, key: &str) -> Result<bool> {
        let cache_key = cache_key(current.id.as_deref(), key);
        if self.options.no_cache {
            return Ok(false);
        }
        let Some(image) = self.cached(&cache_key) else {
            return Ok(false);
        };
        self.say(" ---> Using cache")?;
        self.say_id(&image)?;
        *current = from_image(&image);
        Ok(true)
    }

    /// The image of a full ID (`sha256:<hex>`), from the build's table of the store's images
    /// (filled with every image of the store on its first miss).
    pub(crate) fn image(&self, id: &str) -> Result<Image> {
        if let Some(image) = self.by_id.borrow().get(id) {
            return Ok(image.clone());
        }
        if !self.scanned.replace(true) {
            let images = self.store.images()?;
            let mut table = self.by_id.borrow_mut();
            table.extend(images.into_iter().map(|i| (i.id.to_string(), i)));
            if let Some(image) = table.get(id) {
                return Ok(image.clone());
            }
        }
        // The table has every image of the store: a full ID it lacks is gone (a cache entry
        // whose image was removed), and asking the store would read every image again.
        if id.len() == 71 && id.starts_with("sha256:") {
            bail!("No such image: {id}");
        }
        self.store.resolve(id)
    }

    /// Adds an image the build met (a base, a cache hit, a commit) to its table.
    fn known(&self, image: &Image) {
        self.by_id
            .borrow_mut()
            .insert(image.id.to_string(), image.clone());
    }

    /// The image `id` of a cache entry through the manifest the entry names: only that
    /// image's blobs are read. `None` when the index has no such manifest, or it is not of
    /// that image.
    fn image_by_manifest(&self, id: &str, manifest: &str) -> Option<Image> {
        if let Some(image) = self.by_id.borrow().get(id) {
            return Some(image.clone());
        }
        let digest = crate::image::store::parse_digest(manifest).ok()?;
        let mut entries = self.entries.borrow_mut();
        if entries.is_none() {
            *entries = Some(self.store.entries().ok()?);
        }
        let image = self
            .store
            .image_by_manifest(entries.as_deref()?, &digest)
            .ok()??;
        if image.id.to_string() != id {
            return None;
        }
        self.known(&image);
        Some(image)
    }

    /// A step's ` ---> <id>` line (none inside `ONBUILD` triggers, as moby prints it once
    /// for the `FROM` after them).
    fn say_id(&mut self, image: &Image) -> Result<()> {
        if self.in_triggers {
            return Ok(());
        }
        self.say(&format!(" ---> {}", image.short_id()))
    }

    fn cache_dir(&self) -> PathBuf {
        self.store.dir().join("build-cache")
    }

    /// The image the cache holds for `key`, if it is still in the store. An entry is the
    /// image's ID and its manifest's digest (`sha256:<id> sha256:<manifest>`); an entry of
    /// the ID alone is found by ID.
    fn cached(&self, key: &str) -> Option<Image> {
        let text = std::fs::read_to_string(self.cache_dir().join(key)).ok()?;
        let mut words = text.split_whitespace();
        let id = words.next()?;
        if let Some(image) = words.next().and_then(|m| self.image_by_manifest(id, m)) {
            return Some(image);
        }
        self.image(id).ok()
    }

    /// Records `image` under `key` (a temp file renamed into place): its ID and manifest.
    fn remember(&self, key: &str, image: &Image) -> Result<()> {
        let dir = self.cache_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let entry = format!("{} {}\n", image.id, image.manifest_descriptor.digest());
        crate::state::write_atomic_unsynced(&dir.join(key), entry.as_bytes())
    }

    /// Tags the target stage's image and prints the classic builder's last lines.
    fn finish(mut self, target: usize, args: &BuildArgs) -> Result<Image> {
        let current = self
            .built
            .remove(&target)
            .context("the target was not built")?;
        let id = match current.id {
            Some(id) => id,
            None => {
                // `FROM scratch` alone: the empty image is committed as it is.
                let mut c = current.clone();
                let step = LayerStep {
                    upper: None,
                    history: HistoryBuilder::default().created_by(String::new()),
                    created: SystemTime::now(),
                };
                let image = commit_layer_with(
                    &self.store,
                    &c.layers,
                    c.config.clone(),
                    &c.extra,
                    step,
                    &[],
                )?;
                c.id = Some(image.id.to_string());
                image.id.to_string()
            }
        };
        let unused = args.not_consumed();
        if !unused.is_empty() && !self.options.quiet {
            self.say(&format!(
                "[Warning] One or more build-args [{}] were not consumed",
                unused.join(" ")
            ))?;
        }
        let image = self.image(&id)?;
        // A rebuild that names the same image again leaves the index (and its fsync) alone.
        if !self.options.tags.iter().all(|t| image.names.contains(t)) {
            self.store
                .add_image(&image.manifest_descriptor, &self.options.tags)?;
        }
        self.say(&format!("Successfully built {}", image.short_id()))?;
        for name in &self.options.tags {
            self.say(&format!("Successfully tagged {}", name.familiar()))?;
        }
        Ok(image)
    }
}

/// A stage's `CurrentImage`, as `step_one`'s helpers need it apart from the rest of the state.
fn state_parts(state: &mut StageState) -> copy::StepState<'_> {
    copy::StepState {
        current: &mut state.current,
        shell: &state.shell,
    }
}

pub(crate) fn short(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// The cache key of a step: sha256 of the parent image ID and what the step does.
fn cache_key(parent: Option<&str>, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(parent.unwrap_or("scratch").as_bytes());
    hasher.update(b"\n");
    hasher.update(key.as_bytes());
    hex(&hasher.finalize())
}

/// An image in the store as a stage's current image.
fn from_image(image: &Image) -> CurrentImage {
    CurrentImage {
        config: image.config.clone(),
        extra: image.config_extra.clone(),
        layers: image.manifest.layers().clone(),
        id: Some(image.id.to_string()),
    }
}

/// `FROM scratch`: no layers, this machine's platform.
fn scratch() -> Result<CurrentImage> {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(Vec::<String>::new())
        .build()
        .context("building the image rootfs")?;
    let config = ImageConfigurationBuilder::default()
        .os(oci_spec::image::Os::Linux)
        .architecture(oci_spec::image::Arch::default())
        .rootfs(rootfs)
        .config(Config::default())
        .build()
        .context("building the image config")?;
    Ok(CurrentImage {
        config,
        extra: serde_json::Map::new(),
        layers: Vec::new(),
        id: None,
    })
}

/// A list of strings among Docker's config fields (`Shell`, `OnBuild`).
fn extra_list(
    extra: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<Vec<String>> {
    serde_json::from_value(extra.get(key)?.clone()).ok()
}

/// The image's `Env`.
fn env_of(config: &ImageConfiguration) -> Vec<String> {
    config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default()
}

/// `WORKDIR dir` from the current working dir: an absolute path, cleaned.
fn workdir(current: Option<&str>, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_owned()
    } else {
        format!("{}/{dir}", current.unwrap_or("/"))
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A command's argv: the shell first for the shell form.
pub(crate) fn argv(shell: &[String], cmd: &CommandLine) -> Vec<String> {
    if cmd.prepend_shell {
        let mut v = shell.to_vec();
        v.push(cmd.args.join(" "));
        v
    } else {
        cmd.args.clone()
    }
}

/// The history of a step the classic builder ran a container for (`WORKDIR`, `COPY`,
/// `ADD`): `#(nop) ` and the comment as one word, so one space follows `#(nop)`
/// (`/bin/sh -c #(nop) WORKDIR /app`).
pub(crate) fn nop_single(shell: &[String], comment: &str) -> String {
    let mut words = shell.to_vec();
    words.push(format!("#(nop) {comment}"));
    words.join(" ")
}

/// `CMD`'s and `ENTRYPOINT`'s history: `/bin/sh -c #(nop)  CMD ["sh" "-c" "x"]`.
fn nop_command(name: &str, shell: &[String], cmd: &CommandLine) -> String {
    let words: Vec<String> = argv(shell, cmd)
        .iter()
        .map(|w| crate::build::shell::go_quote(w))
        .collect();
    instructions::nop_created_by(shell, &format!("{name} [{}]", words.join(" ")))
}

/// The config change of a metadata instruction.
fn apply(config: &mut Config, kind: &Kind, shell: &[String], cmd_set: &mut bool) -> Result<()> {
    match kind {
        Kind::Env(kvs) => {
            let mut env = config.env().clone().unwrap_or_default();
            for kv in kvs {
                let entry = format!("{}={}", kv.key, kv.value);
                match env
                    .iter()
                    .position(|e| e.split('=').next() == Some(&kv.key))
                {
                    Some(i) => env[i] = entry,
                    None => env.push(entry),
                }
            }
            config.set_env(Some(env));
        }
        Kind::Label(kvs) => {
            let mut labels = config.labels().clone().unwrap_or_default();
            for kv in kvs {
                labels.insert(kv.key.clone(), kv.value.clone());
            }
            config.set_labels(Some(labels));
        }
        Kind::User(u) => {
            config.set_user(Some(u.clone()));
        }
        Kind::StopSignal(s) => {
            config.set_stop_signal(Some(s.clone()));
        }
        Kind::Expose(ports) => {
            let mut list = config.exposed_ports().clone().unwrap_or_default();
            for port in ports.iter().map(|p| expose_ports(p)) {
                for port in port? {
                    if !list.contains(&port) {
                        list.push(port);
                    }
                }
            }
            list.sort();
            config.set_exposed_ports(Some(list));
        }
        Kind::Volume(vols) => {
            let mut list = config.volumes().clone().unwrap_or_default();
            for v in vols {
                if v.trim().is_empty() {
                    bail!("VOLUME specified can not be an empty string");
                }
                if !list.contains(v) {
                    list.push(v.clone());
                }
            }
            config.set_volumes(Some(list));
        }
        Kind::Cmd(cmd) => {
            config.set_cmd(Some(argv(shell, cmd)));
            *cmd_set = true;
        }
        Kind::Entrypoint(cmd) => {
            config.set_entrypoint(cmd.as_ref().map(|c| argv(shell, c)));
            if !*cmd_set {
                config.set_cmd(None);
            }
        }
        Kind::Maintainer(_) => {}
        other => bail!("{other:?} is not a metadata instruction"),
    }
    Ok(())
}

/// One `EXPOSE` word as Docker's `nat.ParsePortSpecs` reads it: `80`, `53/udp`, or a range
/// `8000-8002/tcp` (one entry per port); the protocol defaults to `tcp`.
fn expose_ports(word: &str) -> Result<Vec<String>> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_lowercase();
    let bad = || anyhow::anyhow!("invalid containerPort: {word}");
    let (start, end) = ports.split_once('-').unwrap_or((ports, ports));
    let start: u16 = start.parse().map_err(|_| bad())?;
    let end: u16 = end.parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// A directory under the state root for one step's files, removed on drop.
pub(crate) struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(root: &Path) -> Result<TempDir> {
        let base = root.join("tmp");
        std::fs::create_dir_all(&base).with_context(|| format!("mkdir {}", base.display()))?;
        let path = base.join(format!("build-{}", crate::container::new_id()?));
        std::fs::create_dir(&path).with_context(|| format!("mkdir {}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Builder<'_> {
    // ANCHOR: run_step
    /// `RUN`: a container on the current image, created and supervised as `minidock run`
    /// does (network `none` unless `--network`), with the build args in its environment
    /// only; its upper dir becomes the step's layer. Its history (and cache key) is Docker's:
    /// the build args as `|N K=V …`, then the command (`|1 V=2 /bin/sh -c make`).
    fn run_step(&mut self, state: &mut StageState, cmd: &CommandLine) -> Result<()> {
        let (cmd, script) = heredoc_command(cmd)?;
        let env = env_of(&state.current.config);
        let argv = argv(&state.shell, &cmd);
        let mut words = state.args.run_prefix(&env);
        words.extend(argv.iter().cloned());
        let created_by = words.join(" ");
        // A heredoc script's text is part of the key, since the command only names its file.
        let key = match &script {
            Some((_, data)) => format!("{created_by}\n{data}"),
            None => created_by.clone(),
        };
        // A cached step starts no container (its cache file is read once).
        if self.use_cache(&mut state.current, &key)? {
            return Ok(());
        }
        let mut volumes = Vec::new();
        let _pipes = match script {
            Some((name, data)) => Some(self.script_dir(&name, &data, &mut volumes)?),
            None => None,
        };
        // ANCHOR: run_step_core
        let image = self.ensure_committed(&mut state.current)?;
        let container =
            self.run_container(&image, argv.clone(), state.args.run_env(&env), volumes)?;
        let upper = self.paths.dir(&container.id).join("upper");
        let result = self.commit_step(&mut state.current, &key, Some(&upper), &created_by);
        drop(container);
        result
        // ANCHOR_END: run_step_core
    }
    // ANCHOR_END: run_step

    /// A heredoc script `name` (mode 0755) in a temp dir, which `volumes` gets as a
    /// read-only mount at `/dev/pipes`; the dir goes when the returned guard drops.
    fn script_dir(&self, name: &str, data: &str, volumes: &mut Vec<String>) -> Result<TempDir> {
        let pipes = TempDir::new(&self.paths.root)?;
        let file = pipes.path.join(name);
        std::fs::write(&file, data).with_context(|| format!("writing {}", file.display()))?;
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .with_context(|| format!("chmod {}", file.display()))?;
        volumes.push(format!("{}:/dev/pipes:ro", pipes.path.display()));
        Ok(pipes)
    }

    /// The current image's ID, committing a `FROM scratch` stage's empty image first.
    fn ensure_committed(&mut self, current: &mut CurrentImage) -> Result<String> {
        if let Some(id) = &current.id {
            return Ok(id.clone());
        }
        let step = LayerStep {
            upper: None,
            history: HistoryBuilder::default().created_by(String::new()),
            created: SystemTime::now(),
        };
        let image = commit_layer_with(
            &self.store,
            &current.layers,
            current.config.clone(),
            &current.extra,
            step,
            &[],
        )?;
        Ok(image.id.to_string())
    }

    // ANCHOR: run_container
    /// Runs `argv` in a new container on `image` to its end; errors when it exits non-zero
    /// (Docker's message, the command's status as the exit code).
    fn run_container(
        &mut self,
        image: &str,
        argv: Vec<String>,
        env: Vec<String>,
        volumes: Vec<String>,
    ) -> Result<Step> {
        use crate::container::{CreateOptions, shim, spec::RunOptions};
        let network = self
            .options
            .network
            .clone()
            .unwrap_or_else(|| "none".into());
        let options = CreateOptions {
            image: image.to_owned(),
            name: None,
            run: RunOptions {
                command: argv.clone(),
                entrypoint: Some(String::new()),
                env,
                volumes,
                network: Some(network),
                restart: "no".into(),
                ..RunOptions::default()
            },
            supervised: true,
            build_step: true,
        };
        let state = crate::container::create(self.paths, &options)?;
        let step = Step {
            paths: self.paths.clone(),
            id: state.id.clone(),
        };
        self.say(&format!(" ---> Running in {}", short(&state.id)))?;
        let status = shim::supervise(self.paths, &state.id, Some(self.attach()?), &mut |_| {})?;
        if status != 0 {
            let message = format!(
                "The command '{}' returned a non-zero code: {status}",
                argv.join(" ")
            );
            return Err(RunFailed(Exit::new(status, message)).into());
        }
        let removing = format!("Removing intermediate container {}", short(&state.id));
        self.say(&removing)?;
        Ok(step)
    }
    // ANCHOR_END: run_container

    /// Where a `RUN`'s output goes: the build's output (the daemon's stream), else this
    /// process's stdout and stderr; with `-q`, only the container's log.
    fn attach(&self) -> Result<crate::container::shim::Attach> {
        use crate::container::shim::Attach;
        Ok(match &self.options.run_output {
            Some(fd) if !self.options.quiet => Attach {
                stdout: Some(fd.try_clone().context("dup of the build output")?),
                stderr: Some(fd.try_clone().context("dup of the build output")?),
                stdin: false,
                sig_proxy: false,
            },
            _ => Attach::streams(false, !self.options.quiet, !self.options.quiet)?,
        })
    }
}

// ANCHOR: heredoc_command
/// A `RUN` with heredocs as buildkit runs it (the classic builder has none): a command that
/// is one heredoc alone runs the heredoc's text as the shell's command, or, when the text
/// starts with `#!`, as a script file `/dev/pipes/NAME` (0755, returned as `(NAME, text)`
/// for the step to mount); any other command goes to the shell with each heredoc's text and
/// terminator appended, so the shell reads them as its own here-documents.
fn heredoc_command(cmd: &CommandLine) -> Result<(CommandLine, Option<(String, String)>)> {
    let Some(first) = cmd.files.first() else {
        return Ok((cmd.clone(), None));
    };
    if cmd.args.len() != 1 || !cmd.prepend_shell {
        bail!("parsing produced an invalid run command: {:?}", cmd.args);
    }
    let shell_form = |text: String| CommandLine {
        args: vec![text],
        prepend_shell: true,
        files: Vec::new(),
    };
    let alone = parser::parse_heredoc(cmd.args[0].trim()).ok().flatten();
    if alone.is_none() {
        let mut full = cmd.args[0].clone();
        for file in &cmd.files {
            full.push('\n');
            full.push_str(&file.content);
            full.push_str(&file.name);
        }
        return Ok((shell_form(full), None));
    }
    let data = if first.chomp {
        parser::chomp_heredoc_content(&first.content)
    } else {
        first.content.clone()
    };
    if data.starts_with("#!") {
        if first.name.contains('/') || first.name.starts_with('.') {
            bail!(
                "a heredoc script's name must be a plain file name: {:?}",
                first.name
            );
        }
        let run = shell_form(format!("/dev/pipes/{}", first.name));
        return Ok((run, Some((first.name.clone(), data))));
    }
    Ok((shell_form(data), None))
}
// ANCHOR_END: heredoc_command

/// A `RUN` that exited non-zero: the build exits with its status and Docker's message.
#[derive(Debug)]
pub struct RunFailed(pub Exit);

impl std::fmt::Display for RunFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.message)
    }
}

impl std::error::Error for RunFailed {}

/// A step's container, removed on drop.
struct Step {
    paths: Paths,
    id: String,
}

impl Drop for Step {
    fn drop(&mut self) {
        let _ = crate::container::remove(&self.paths, &self.id, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_words_and_workdirs_as_docker_reads_them() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002/tcp").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("http").is_err() && expose_ports("9-1").is_err());
        assert_eq!(workdir(Some("/app"), "rel/../x"), "/app/x");
        assert_eq!(workdir(None, "/a//b/"), "/a/b");
    }
}
