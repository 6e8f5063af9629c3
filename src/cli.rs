//! The command line (clap derive): `demo | gen | batch | open | keygen | certs | sim | serve |
//! check | token | audit`.
//!
//! Output for people goes to stdout; logs (tracing) and progress bars to stderr. Exit codes:
//! 0 clean, 1 the run finished but something was quarantined or a source unverified (or a
//! report could not be opened), 2 the run failed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::assess::Policy;
use crate::batch::{BatchOptions, Summary};
use crate::domain::date::today;
use crate::seal::{
    Opener, RecipientPrivateKey, RecipientPublicKey, SealedReport, SigningKey, VerifyingKey,
};

/// hedui (核对): household economic-status verification for social assistance.
#[derive(Parser, Debug)]
#[command(name = "hedui", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole job on a generated county, in one command (for a newcomer).
    Demo {
        /// Households to generate.
        #[arg(long, default_value_t = 30_000)]
        households: usize,
        /// Keep the generated data and outputs here instead of a temporary directory: a new
        /// or empty directory, or one an earlier `hedui demo --keep` wrote (its files are
        /// replaced). Any other non-empty directory is refused (exit 2), nothing written.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Generate a deterministic synthetic county (caseload + 12 source extracts).
    Gen {
        /// Households in the caseload.
        #[arg(long, default_value_t = 30_000)]
        households: usize,
        /// Random seed (same seed, same bytes).
        #[arg(long, default_value_t = 20_261_101)]
        seed: u64,
        /// County code (GB/T 2260).
        #[arg(long, default_value = "620503")]
        region: String,
        /// As-of date D the data is built around.
        #[arg(long, default_value = "2026-11-01")]
        as_of: NaiveDate,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Residents covered by the sources per caseload member.
        #[arg(long, default_value_t = 8.0)]
        population_factor: f64,
        /// Fraction of caseload persons' source rows keyed with another person's valid ID
        /// (a fresh one of the same birth date, or another resident's); lists them in
        /// truth_dirty (source, row, true_id_number, kind). 0 = none.
        #[arg(long, default_value_t = 0.0)]
        wrong_valid_ids: f64,
    },
    /// Verify a whole caseload against department extracts and seal the reports.
    Batch {
        /// Directory with households, members, supporters (CSV/TSV/TXT in UTF-8, GBK/GB18030
        /// or UTF-16, Parquet, XLSX/XLS, JSON lines; README "Department files as they come").
        #[arg(long)]
        caseload: PathBuf,
        /// Directory with the 12 source extracts (`<source>.csv`, `.parquet`, or the other
        /// formats of --caseload).
        #[arg(long)]
        sources: PathBuf,
        /// Policy file (policies/*.toml); default: the bundled illustrative policy.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Civil-affairs recipient public key(s) (`civil.pub`); repeat for several.
        #[arg(long, required = true)]
        recipient: Vec<PathBuf>,
        /// hedui's signing key (default: `hedui-signing.key` beside the first recipient key).
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// As-of date D (default: today in China Standard Time, UTC+08:00).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// A previous run's output directory: write changes.json.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// Stop at the first quarantined row, naming file, line, column and reason (exit 2).
        #[arg(long)]
        strict: bool,
        /// Only the households whose region code (six digits of the policy's region) starts
        /// with this prefix (e.g. 6205), or `other` for the households whose region code is
        /// not such (empty, damaged, another province's): the exact slice of a full run's
        /// output.
        #[arg(long)]
        partition: Option<String>,
        /// Source deltas since `--previous` (README "Incremental runs"): recompute only the
        /// households they touch and reuse the rest of the previous run.
        #[arg(long, requires = "previous")]
        delta: Option<PathBuf>,
        /// Bound the run's memory (e.g. 8G, 2G, 512M): above it, the caseload runs in slices
        /// one after another (same output, slower).
        #[arg(long, value_parser = crate::batch::parse_memory_limit)]
        memory_limit: Option<u64>,
    },
    /// Open sealed reports with a civil-affairs private key; print JSON.
    Open {
        /// The recipient private key (`civil.key`).
        #[arg(long)]
        key: PathBuf,
        /// hedui's public signing key to trust (default: `hedui-signing.pub` beside the key, if present).
        #[arg(long)]
        signer: Option<PathBuf>,
        /// Open without a trusted signer: each report's signature is checked only against the
        /// key inside it, which proves nothing about who sealed it. Without this flag, `open`
        /// refuses when it has no trusted signer.
        #[arg(long)]
        trust_embedded_signer: bool,
        /// The reports file (`reports.jsonl`) or one envelope (`.json`).
        file: PathBuf,
        /// Only this household (pretty JSON); without it, every report as JSON lines (one
        /// envelope saved pretty-printed, `jq .sealed_report`, opens pretty-printed).
        #[arg(long)]
        household: Option<String>,
        /// `json` (default), `html` (the 核对报告 page) or `receipt` (the applicant's 数据查询回执); pages need `--household`.
        #[arg(long, value_enum, default_value_t = OpenFormat::Json)]
        format: OpenFormat,
    },
    /// Serve on-demand verifications over HTTPS (intake systems; see README "On-demand verification for intake systems").
    Serve {
        /// The service config (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Verify one household (JSON, as POST /v1/verifications) from the command line.
    /// Exit 0 eligible, 1 referred, 3 ineligible, 4 refused, 2 failed, 130 interrupted
    /// (Ctrl-C or SIGTERM while the departments are asked: the job is stored refused, no report).
    Check {
        /// The service config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// The household (JSON).
        household: PathBuf,
        /// Write the sealed report here (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Bearer tokens of the service.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The service's audit log.
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Error-tolerant record linkage: evaluate the linker on files with known true pairs.
    Link {
        /// What to do.
        #[command(subcommand)]
        command: LinkCommand,
    },
    /// Make a civil-affairs recipient key pair and a hedui signing key pair.
    Keygen {
        /// Directory to write civil.key, civil.pub, hedui-signing.key, hedui-signing.pub.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a test CA and TLS certificates for sim, serve and the source client (tests, drills).
    Certs {
        /// Directory to write ca.pem/.key, server.pem/.key, client.pem/.key, intake.pem/.key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve the department sources over HTTPS with mutual TLS, from the files `hedui gen` wrote.
    Sim {
        /// Directory with the 12 source extracts (`hedui gen --out`).
        #[arg(long)]
        data: PathBuf,
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// Directory with ca.pem, server.pem, server.key (`hedui certs --out`).
        #[arg(long)]
        certs: PathBuf,
        /// Per-source latency and faults (TOML; see `hedui::sim::faults`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// As-of date for ID-number validation (default: today in China Standard Time, UTC+08:00).
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
}

/// `hedui token …`.
#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create a token; prints its id and the secret (once: only its SHA-256 is stored).
    Add {
        /// The service store (SQLite; created).
        #[arg(long)]
        store: PathBuf,
        /// Role: intake, auditor, admin (repeat for several).
        #[arg(long, required = true)]
        role: Vec<String>,
        /// Region-code prefix the token may act for (repeat; `*` = all).
        #[arg(long, required = true)]
        region: Vec<String>,
        /// A label (which intake system); no ID number, in any spelling.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a token by its id (`tok_…`): its secret is refused from now on.
    Revoke {
        /// The service store (SQLite).
        #[arg(long)]
        store: PathBuf,
        /// The token id, as `token add` printed it.
        #[arg(long)]
        id: String,
    },
}

/// `hedui audit …`.
#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Recompute the audit log's hash chain; exit 1 naming the first bad row.
    Verify {
        /// The service store (SQLite).
        #[arg(long)]
        store: PathBuf,
    },
}

/// `hedui link …`.
#[derive(Subcommand, Debug)]
pub enum LinkCommand {
    /// Link two CSV files with a schema and score against the true pairs: precision, recall,
    /// F1 at the schema's thresholds and at the best-F1 threshold, pairs compared, seconds,
    /// a precision-recall curve (SVG). Prints one JSON line after a table.
    Eval {
        /// Left records (CSV with a header row).
        #[arg(long)]
        left: PathBuf,
        /// Right records (CSV).
        #[arg(long)]
        right: PathBuf,
        /// True pairs (CSV: left id, right id).
        #[arg(long)]
        truth: PathBuf,
        /// Link schema (TOML); default: the bundled FEBRL schema.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Write the precision-recall curve here (SVG).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

/// Output of `open`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenFormat {
    /// The report as JSON (DESIGN.md §4).
    Json,
    /// The verification report as a self-contained HTML page (核对报告).
    Html,
    /// The applicant's data receipt as a self-contained HTML page (数据查询回执).
    Receipt,
}

/// Output format of `gen`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CSV, UTF-8.
    Csv,
    /// Parquet.
    Parquet,
}

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // colour codes only on a terminal, never in a redirected log file
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEDUI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(cli) {
        Ok(code) => code,
        // `hedui open … | head`: the reader went away; that is not an error of hedui.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            0
        }
        Err(e) => {
            say!("hedui: error: {e:#}");
            2
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Keygen { out } => {
            let p = crate::seal::keygen(&out).context("Failed to make keys")?;
            let recipient_id = RecipientPublicKey::load(&p.recipient_public)
                .map(|k| k.key_id())
                .unwrap_or_default();
            let signer_id = VerifyingKey::load(&p.signing_public)
                .map(|k| k.key_id())
                .unwrap_or_default();
            out!("recipient key id {recipient_id}, hedui signing key id {signer_id}");
            out!(
                "recipient private key (keep it with civil affairs): {}",
                p.recipient_private.display()
            );
            out!(
                "recipient public key (give to hedui batch --recipient): {}",
                p.recipient_public.display()
            );
            out!("hedui signing key: {}", p.signing_private.display());
            out!(
                "hedui signing public key (trusted by hedui open): {}",
                p.signing_public.display()
            );
            Ok(0)
        }
        Command::Batch {
            caseload,
            sources,
            policy,
            recipient,
            signing_key,
            out,
            as_of,
            previous,
            strict,
            partition,
            delta,
            memory_limit,
        } => {
            let policy = match policy {
                Some(p) => Policy::load(&p).context("Failed to load the policy")?,
                None => Policy::bundled(),
            };
            let recipients = recipient
                .iter()
                .map(|p| {
                    RecipientPublicKey::load(p)
                        .with_context(|| format!("Failed to load recipient key {}", p.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            let signing_path =
                signing_key.unwrap_or_else(|| sibling(&recipient[0], "hedui-signing.key"));
            let signing = SigningKey::load(&signing_path).with_context(|| {
                format!("Failed to load the signing key {}", signing_path.display())
            })?;
            for (flag, dir, holds) in [
                (
                    "--caseload",
                    &caseload,
                    "households, members and supporters files",
                ),
                ("--sources", &sources, "department extracts"),
            ] {
                if !dir.is_dir() {
                    bail!(
                        "{flag} {}: no such directory (give the folder that holds the {holds})",
                        dir.display()
                    );
                }
            }
            if let Some(p) = &previous
                && !p.join("determinations.csv").is_file()
            {
                bail!(
                    "--previous {}: no determinations.csv there (give the --out folder of an earlier batch)",
                    p.display()
                );
            }
            // (session 21's attack: `--out P/state --previous P` wrote a whole run into the
            // previous run's state folder)
            if let Some(p) = &previous
                && let Ok(state) = std::fs::canonicalize(p.join("state"))
                && resolved(&out).starts_with(&state)
            {
                bail!(
                    "--out {} is inside the state folder of --previous {}: give the new run a folder of its own",
                    out.display(),
                    p.display()
                );
            }
            if let Some(d) = &delta
                && !d.is_dir()
            {
                bail!(
                    "--delta {}: no such directory (give the folder that holds the source deltas)",
                    d.display()
                );
            }
            let as_of = as_of.unwrap_or_else(today);
            if as_of > today() {
                bail!(
                    "--as-of {as_of} is after today ({}): the tax year and income window would hold no records yet, and missing must never read as zero",
                    today()
                );
            }
            if let Err(e) = policy.check_in_force(as_of) {
                bail!("--as-of {as_of}: {e}");
            }
            // household aliases keyed by hedui's signing key: the same in every run
            crate::ingest::caseload::set_alias_key(signing.derive_secret(ALIAS_LABEL));
            let mut opts = BatchOptions {
                caseload,
                sources,
                policy,
                recipients,
                signing,
                out,
                as_of,
                previous,
                progress: true,
                strict,
            };
            // the process ends after the run: its structures go with it (not a memory-limited
            // run's, which frees each slice before the next)
            if memory_limit.is_none() {
                crate::batch::leave_memory_to_exit();
            }
            match (&partition, &delta, memory_limit) {
                (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                    bail!("--partition, --delta and --memory-limit are separate modes: give one")
                }
                (Some(p), None, None)
                    if p != crate::batch::OTHER_PARTITION
                        && (p.is_empty()
                            || p.len() > 6
                            || !p.bytes().all(|b| b.is_ascii_digit())) =>
                {
                    bail!(
                        "--partition {}: a region-code prefix is 1 to 6 digits (GB/T 2260: 62 a province, 6205 a prefecture, 620503 a county), or `other` for the households whose region code is not six digits of the policy's region",
                        typed(p)
                    )
                }
                (None, Some(_), None) => {
                    let prev = opts.previous.clone().unwrap_or_default();
                    crate::batch::previous_apart(&prev, &opts.out).context("Batch failed")?;
                }
                _ => {}
            }
            // written into a folder inside --out, put in place when the run succeeds: a
            // refused run leaves --out as it was
            #[allow(
                clippy::result_large_err,
                reason = "BatchError names the file, row, column and value; returned once per run"
            )]
            let summary = crate::batch::run_published(&mut opts, |opts| {
                match (&partition, &delta, memory_limit) {
                    (Some(p), _, _) => crate::batch::run_partition(opts, p),
                    (None, Some(d), _) => {
                        let prev = opts.previous.clone().unwrap_or_default();
                        crate::batch::run_incremental(opts, &prev, d)
                    }
                    (None, None, Some(limit)) => crate::batch::run_limited(opts, limit),
                    (None, None, None) => crate::batch::run(opts),
                }
            })
            .context("Batch failed")?;
            if let (Some(p), 0) = (&partition, summary.households) {
                if p == crate::batch::OTHER_PARTITION {
                    // (the newcomer trial of session 23: "starting with other" read as if
                    // `other` were a prefix)
                    say!(
                        "warning: every household of the caseload has a county code of the policy's region: partition other holds none, nothing was verified"
                    );
                } else {
                    say!(
                        "warning: no household of the caseload has a county's region code starting with {p}: nothing was verified (a code that is no current county's, such as a prefecture's own 620500, is in --partition other)"
                    );
                }
            }
            if let Some(n) = summary.caseload["households_in_no_region_partition"]
                .as_u64()
                .filter(|n| *n > 0)
            {
                say!(
                    "warning: {n} households of the caseload have a region code that is not a county of the policy's region (empty, damaged, another province's, or no current GB/T 2260 county-level code such as a prefecture's own): no region partition holds them; run `--partition other` for them"
                );
            }
            print_summary(&summary, &opts.out);
            Ok(summary.exit_code)
        }
        Command::Open {
            key,
            signer,
            trust_embedded_signer,
            file,
            household,
            format,
        } => open(
            &key,
            signer,
            trust_embedded_signer,
            &file,
            household.as_deref(),
            format,
        ),
        Command::Gen {
            households,
            seed,
            region,
            as_of,
            out,
            format,
            population_factor,
            wrong_valid_ids,
        } => {
            let region_code = crate::domain::RegionCode::parse(&region)
                .with_context(|| format!("--region {}", typed(&region)))?;
            if region_code.level() != "county" {
                bail!(
                    "--region {region} ({}) is not a county-level code",
                    region_code.name()
                );
            }
            let cfg = crate::r#gen::GenConfig {
                wrong_valid_ids,
                ..gen_config(
                    households,
                    seed,
                    region_code.code(),
                    as_of,
                    population_factor,
                )
            };
            let t = std::time::Instant::now();
            let stats = generate_to(&cfg, &out, format)?;
            let rows_of = |t: &str| {
                stats
                    .rows
                    .iter()
                    .find(|(n, _)| *n == t)
                    .map_or(0, |(_, r)| *r)
            };
            out!(
                "generated {} households, {} members, {} supporters ({} supporter rows: one person \
                 may support two members), {} residents ({} household_registration rows: a few \
                 members have none) into {} in {:.1} s",
                stats.households,
                stats.members,
                stats.supporters,
                rows_of("supporters"),
                stats.residents,
                rows_of("household_registration"),
                out.display(),
                t.elapsed().as_secs_f64()
            );
            for (t, n) in &stats.rows {
                out!("  {t:<24}{n:>12} rows");
            }
            Ok(0)
        }
        Command::Demo { households, keep } => demo(households, keep),
        Command::Serve { config } => crate::api::serve(&config).map(|()| 0),
        Command::Check {
            config,
            household,
            out,
        } => crate::api::check(&config, &household, out.as_deref()),
        Command::Token { action } => token(action),
        Command::Audit { action } => audit(action),
        Command::Certs { out } => {
            let f = crate::certs::generate(&out).context("Failed to make certificates")?;
            out!("test CA: {} (key {})", f.ca.display(), f.ca_key.display());
            out!(
                "server (localhost, 127.0.0.1): {} (key {})",
                f.server.display(),
                f.server_key.display()
            );
            out!(
                "client hedui → sources: {} (key {})",
                f.client.display(),
                f.client_key.display()
            );
            out!(
                "client intake → serve: {} (key {})",
                f.intake.display(),
                f.intake_key.display()
            );
            Ok(0)
        }
        Command::Sim {
            data,
            listen,
            certs,
            config,
            as_of,
        } => {
            crate::sim::run(&crate::sim::SimOptions {
                data,
                listen,
                certs,
                config,
                as_of,
            })
            .context("hedui sim failed")?;
            Ok(0)
        }
        Command::Link { command } => crate::link::cli::run(command),
    }
}

fn gen_config(
    households: usize,
    seed: u64,
    region: u32,
    as_of: NaiveDate,
    population_factor: f64,
) -> crate::r#gen::GenConfig {
    let prefix = region / 10_000;
    let other_counties = crate::domain::region::counties_under(prefix)
        .into_iter()
        .filter(|c| *c != region)
        .collect();
    crate::r#gen::GenConfig {
        households,
        seed,
        region,
        other_counties,
        as_of,
        population_factor,
        ..Default::default()
    }
}

/// Generate a county into `out` (created), one file per table.
fn generate_to(
    cfg: &crate::r#gen::GenConfig,
    out: &Path,
    format: Format,
) -> Result<crate::r#gen::GenStats> {
    std::fs::create_dir_all(out).with_context(|| format!("Failed to create {}", out.display()))?;
    crate::r#gen::generate(cfg, &mut |table| match format {
        Format::Csv => crate::r#gen::write_csv(&table, &out.join(format!("{}.csv", table.name))),
        Format::Parquet => {
            crate::r#gen::write_parquet(&table, &out.join(format!("{}.parquet", table.name)))
        }
    })
}

/// The file that marks a directory `hedui demo --keep` wrote (so a second demo may replace it).
const DEMO_MARK: &str = ".hedui-demo";

/// `hedui demo`: generate, make keys, run the batch, open two reports, print a summary.
fn demo(households: usize, keep: Option<PathBuf>) -> Result<i32> {
    let t0 = std::time::Instant::now();
    // The demo's files stay for the newcomer to explore (printed at the end).
    let temporary = keep.is_none();
    let root = match keep {
        Some(p) => {
            let used = std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_some());
            if used && !p.join(DEMO_MARK).exists() {
                anyhow::bail!(
                    "--keep {}: the directory holds files that `hedui demo` did not write; give a new or empty directory (nothing was written)",
                    p.display()
                );
            }
            std::fs::create_dir_all(&p)
                .and_then(|()| std::fs::write(p.join(DEMO_MARK), "written by hedui demo\n"))
                .with_context(|| format!("Failed to prepare --keep {}", p.display()))?;
            p
        }
        None => tempfile::Builder::new()
            .prefix("hedui-demo-")
            .tempdir()
            .context("Failed to make a temporary directory")?
            .keep(),
    };
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).expect("valid date");
    let data = root.join("county");
    out!(
        "1/4 generating a synthetic county (620503 麦积区, {households} households) into {}",
        data.display()
    );
    let cfg = gen_config(households, 20_261_101, 620503, as_of, 8.0);
    let stats = generate_to(&cfg, &data, Format::Parquet)?;
    out!(
        "    {} members, {} supporters; sources cover {} residents in {} rows ({:.1} s)",
        stats.members,
        stats.supporters,
        stats.residents,
        stats
            .rows
            .iter()
            .filter(|(t, _)| crate::SourceKind::from_name(t).is_some())
            .map(|(_, n)| n)
            .sum::<usize>(),
        t0.elapsed().as_secs_f64()
    );
    let keys = root.join("keys");
    if !keys.join("civil.key").exists() {
        crate::seal::keygen(&keys).context("Failed to make keys")?;
    }
    out!(
        "2/4 keys: civil-affairs recipient {}/civil.key (.pub), hedui signing {}/hedui-signing.key (.pub)",
        keys.display(),
        keys.display()
    );
    let out = root.join("run");
    out!(
        "3/4 hedui batch --caseload {0} --sources {0} --recipient {1}/civil.pub --out {2} --as-of {as_of}",
        data.display(),
        keys.display(),
        out.display()
    );
    let signing = SigningKey::load(&keys.join("hedui-signing.key"))?;
    crate::ingest::caseload::set_alias_key(signing.derive_secret(ALIAS_LABEL));
    let opts = BatchOptions {
        caseload: data.clone(),
        sources: data.clone(),
        policy: Policy::bundled(),
        recipients: vec![RecipientPublicKey::load(&keys.join("civil.pub"))?],
        signing,
        out: out.clone(),
        as_of,
        previous: None,
        progress: true,
        strict: false,
    };
    let summary = crate::batch::run(&opts).context("Batch failed")?;
    out!("4/4 opening one referred and one ineligible report with the civil-affairs key:");
    let opener = Opener::new(
        RecipientPrivateKey::load(&keys.join("civil.key"))?,
        Some(VerifyingKey::load(&keys.join("hedui-signing.pub"))?),
    );
    let text = std::fs::read_to_string(out.join("reports.jsonl"))?;
    for wanted in ["referred", "ineligible"] {
        for line in text.lines() {
            let env: SealedReport = serde_json::from_str(line)?;
            let report: crate::report::VerificationReport =
                serde_json::from_slice(&opener.open(&env)?)?;
            if report.determination.as_str() == wanted {
                print_report_brief(&report);
                break;
            }
        }
    }
    out!();
    print_summary(&summary, &out);
    out!(
        "demo finished in {:.1} s; everything is in {}{}. Open any household with:",
        t0.elapsed().as_secs_f64(),
        root.display(),
        if temporary {
            " (remove it when done)"
        } else {
            ""
        }
    );
    out!(
        "  hedui open --key {}/civil.key {}/reports.jsonl --household <HOUSEHOLD_ID>",
        keys.display(),
        out.display()
    );
    Ok(0)
}

fn print_report_brief(r: &crate::report::VerificationReport) {
    out!(
        "  household {} (programme {}, {}, {} member{}): {}  per-capita income {} yuan/month, per-capita financial assets {} yuan (S = {})",
        r.household_id,
        r.programme,
        r.area,
        r.members,
        if r.members == 1 { "" } else { "s" },
        r.determination.as_str(),
        r.per_capita_monthly_income.as_deref().unwrap_or("-"),
        r.per_capita_financial_assets.as_deref().unwrap_or("-"),
        r.policy.dibao_standard_monthly
    );
    for f in &r.findings {
        out!(
            "    finding {:<24}{:<11}{}",
            f.rule,
            format!("{:?}", f.outcome).to_lowercase(),
            f.evidence
        );
    }
    let sources: Vec<String> = r
        .sources
        .iter()
        .map(|s| {
            let status = serde_json::to_value(s.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{} {status} ({})", s.source, s.records.len())
        })
        .collect();
    out!("    sources: {}", sources.join(", "));
}

/// `path` made absolute with its links resolved, also when its last parts do not exist yet
/// (the longest existing ancestor resolved, the rest appended).
fn resolved(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return abs,
        }
    }
}

fn sibling(path: &Path, name: &str) -> PathBuf {
    path.parent()
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Open reports; print JSON. Exit 1 if any envelope fails to open.
/// The label of the household-alias key derived from the signing key
/// ([`crate::seal::SigningKey::derive_secret`], [`crate::ingest::caseload::household_alias`]).
const ALIAS_LABEL: &[u8] = b"hedui household alias v1";

fn open(
    key: &Path,
    signer: Option<PathBuf>,
    trust_embedded_signer: bool,
    file: &Path,
    household: Option<&str>,
    format: OpenFormat,
) -> Result<i32> {
    if format != OpenFormat::Json && household.is_none() {
        bail!("--format html and --format receipt print one page: give --household ID");
    }
    // The household as given, and as the batch names a caseload household: by its key
    // (`620503h0000030` is 620503H0000030). An API report keeps the intake system's spelling.
    let spellings: Vec<String> = household
        .map(|h| {
            let k = crate::ingest::caseload::household_key(h.trim());
            let mut v = vec![h.to_string()];
            if k != h && !k.is_empty() {
                v.push(k);
            }
            v
        })
        .unwrap_or_default();
    let is_wanted = |report_id: &str| {
        spellings.iter().any(|h| {
            report_id
                .strip_suffix(h.as_str())
                .is_some_and(|run| run.ends_with('/'))
        })
    };
    let private = RecipientPrivateKey::load(key)
        .with_context(|| format!("Failed to load the key {}", key.display()))?;
    let trusted =
        match signer {
            Some(p) => Some(
                VerifyingKey::load(&p)
                    .with_context(|| format!("Failed to load the signer key {}", p.display()))?,
            ),
            None => {
                let p = sibling(key, "hedui-signing.pub");
                if p.is_file() {
                    Some(VerifyingKey::load(&p).with_context(|| {
                        format!("Failed to load the signer key {}", p.display())
                    })?)
                } else {
                    None
                }
            }
        };
    // Found by session 16's attack: without a trusted signer, a report sealed and signed by
    // anyone holding the civil-affairs public key was printed with exit 0 and a warning.
    if trusted.is_none() {
        if !trust_embedded_signer {
            bail!(
                "no trusted signer (no --signer, no hedui-signing.pub beside the key): a report's signature could only be checked against the key inside it, which proves nothing about who sealed it; give --signer with hedui's hedui-signing.pub, or --trust-embedded-signer to open anyway"
            );
        }
        say!(
            "hedui: warning: no trusted signer (--trust-embedded-signer): signatures are checked against the key inside each report only"
        );
    }
    let opener = Opener::new(private, trusted);
    // Read as bytes: a line that is not UTF-8 is one line that is not a sealed report (named
    // below), not a file that cannot be read (found by session 23's attack: one bad byte made
    // `open` refuse every report of the file). An envelope is ASCII: the replacement of
    // invalid bytes touches no sound line.
    let bytes =
        std::fs::read(file).with_context(|| format!("Failed to read {}", file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut failures = 0;
    let mut found = false;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    use std::io::Write;
    // One envelope saved as a whole (pretty-printed JSON, e.g. `jq .sealed_report`), or JSON
    // lines (`reports.jsonl`, one envelope a line).
    // A UTF-8 BOM (a file saved by Notepad or Excel, or two such files concatenated) is not
    // part of the JSON: at the start of the file and of any line it is skipped, as the
    // department-file reader does (../shared/cases C03, "the same BOM rule for JSON inputs").
    let unbom = |l: &str| -> String { l.trim().trim_start_matches('\u{feff}').trim().to_string() };
    // A pretty-printed envelope (several lines, one JSON value: `jq .sealed_report > f.json`)
    // opens to a pretty-printed report; JSON lines, also of one line, to JSON lines (the
    // newcomer trial of session 22: one envelope opened to one long line).
    let mut pretty = false;
    let entries: Vec<(usize, Result<SealedReport, serde_json::Error>)> =
        match serde_json::from_str::<SealedReport>(&unbom(&text)) {
            Ok(env) => {
                pretty = text.trim().lines().count() > 1;
                vec![(0, Ok(env))]
            }
            Err(_) => {
                // With --household only the lines that can hold its report id are parsed (the
                // id is `<run>/<household>`; a line without that text cannot be its envelope).
                // (as the line writes it: JSON-escaped, `"` as `\"`; found by session 23's
                // attack: a household id holding `"` or `\` was never found)
                let wanted: Vec<String> = spellings
                    .iter()
                    .map(|h| format!("/{}", &serde_json::to_string(h).unwrap_or_default()[1..]))
                    .collect();
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| {
                        household.is_none() || wanted.iter().any(|w| l.contains(w.as_str()))
                    })
                    .map(|(i, l)| (i, unbom(l)))
                    .filter(|(_, l)| !l.is_empty())
                    .map(|(i, l)| (i, serde_json::from_str(&l)))
                    .collect()
            }
        };
    // (with --household, no line naming it is said below as "no report for household")
    if entries.is_empty() && (household.is_none() || text.trim().is_empty()) {
        say!(
            "hedui: warning: {} holds no sealed report (an empty file: nothing was opened)",
            file.display()
        );
    }
    let mut not_sealed = 0usize;
    let entries_len = entries.len();
    // (errors opening reports, by their text: how many times each was met)
    let mut same_error: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    // Each household once, and one as-of date: a run's file holds one report per household,
    // all of one date (an incremental run copies lines only from a run of the same date).
    // Found by session 17's attack: an older run's authentic line swapped in, or two runs'
    // files concatenated, opened with exit 0 (two reports of one household printed).
    #[derive(serde::Deserialize)]
    struct Head {
        household_id: String,
        as_of: String,
    }
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    // The file's as-of date: the one most of its batch reports name in their (signed) run ids,
    // `YYYYMMDD-…`, counted over every line, also with --household (found by session 17's
    // second attack: with --household, or with the stray line first, the first line decided).
    // An API envelope's run id is a job id and names no date: not checked.
    let date_of_run = |run_id: &str| -> Option<String> {
        let d = run_id.get(..8)?;
        (d.bytes().all(|b| b.is_ascii_digit()) && run_id.as_bytes().get(8) == Some(&b'-'))
            .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..8]))
    };
    let file_as_of: Option<String> = {
        let mut by_date: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for l in text.lines() {
            if let Some(at) = l.find("\"run_id\":\"")
                && let Some(d) = date_of_run(&l[at + 10..])
            {
                *by_date.entry(d).or_default() += 1;
            }
        }
        by_date
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(d, _)| d)
    };
    for (i, parsed) in entries {
        let env: SealedReport = match parsed {
            Ok(e) => e,
            Err(e) => {
                // the first three are named; a wrong file is one message, not thousands
                not_sealed += 1;
                if not_sealed <= 3 {
                    say!(
                        "hedui: {}:{}: not a sealed report: {}",
                        file.display(),
                        i + 1,
                        envelope_error(&e)
                    );
                }
                failures += 1;
                continue;
            }
        };
        if household.is_some() && !is_wanted(&env.report_id) {
            continue;
        }
        match opener.open(&env) {
            Ok(plain) => {
                let head: Head =
                    serde_json::from_slice(&plain).context("Failed to parse an opened report")?;
                if let Some(&first) = seen.get(&head.household_id) {
                    say!(
                        "hedui: {}:{}: a second report of household {} (the first at line {}): a run's file holds one per household (two runs' files joined, or a line of another run?); not printed",
                        file.display(),
                        i + 1,
                        head.household_id,
                        first + 1
                    );
                    failures += 1;
                    continue;
                }
                if let Some(d) = &file_as_of
                    && date_of_run(&env.run_id).is_some()
                    && *d != head.as_of
                {
                    say!(
                        "hedui: {}:{}: report {} is of as-of date {}, where the file's batch reports are of {}: a run's reports share one date (a line of another run?); not printed",
                        file.display(),
                        i + 1,
                        env.report_id,
                        head.as_of,
                        d
                    );
                    failures += 1;
                    continue;
                }
                seen.insert(head.household_id, i);
                found = true;
                if household.is_some() {
                    match format {
                        OpenFormat::Json => {
                            let v: serde_json::Value = serde_json::from_slice(&plain)
                                .context("Failed to parse an opened report")?;
                            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                        }
                        OpenFormat::Html | OpenFormat::Receipt => {
                            let report: crate::report::VerificationReport =
                                serde_json::from_slice(&plain)
                                    .context("Failed to parse an opened report")?;
                            let texts = crate::render::Texts::zh();
                            let page = if format == OpenFormat::Html {
                                crate::render::report_html(&report, &texts)
                            } else {
                                crate::render::receipt_html(&report, &texts)
                            };
                            out.write_all(page.as_bytes())?;
                        }
                    }
                } else if pretty {
                    let v: serde_json::Value = serde_json::from_slice(&plain)
                        .context("Failed to parse an opened report")?;
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    out.write_all(&plain)?;
                    out.write_all(b"\n")?;
                }
            }
            Err(e) => {
                // The report_id of an envelope that does not open is anyone's text: shown
                // only when it is plain ASCII holding no ID number (found by session 26's
                // attack: `62050319750324540X 徐萍霞` was printed whole).
                let rid = &env.report_id;
                let shown = if rid.is_ascii()
                    && rid.len() <= 120
                    && !rid.chars().any(|c| c.is_ascii_control())
                    && !crate::domain::id_number::holds_id_like(rid)
                {
                    rid.clone()
                } else {
                    "(its report_id is not shown: it may hold an ID number or a name)".into()
                };
                // The same error three times is said three times, then counted: a key that
                // is not the file's recipient's is one message, not one per report (found
                // by the session 28 trial: 300 identical lines and no count).
                let said = same_error.entry(e.to_string()).or_insert(0usize);
                *said += 1;
                if *said <= 3 {
                    say!(
                        "hedui: {}:{}: cannot open report {}: {e}",
                        file.display(),
                        i + 1,
                        shown
                    );
                }
                failures += 1;
            }
        }
    }
    out.flush()?;
    let mut repeated: Vec<(&String, &usize)> = same_error.iter().filter(|(_, n)| **n > 3).collect();
    repeated.sort();
    for (e, n) in repeated {
        say!(
            "hedui: {}: {} more reports cannot be opened: {e}",
            file.display(),
            n - 3
        );
    }
    let opened_lines = entries_len - failures;
    if failures > 0 && household.is_none() {
        say!(
            "hedui: {}: {} of {} lines opened, {} not (exit 1)",
            file.display(),
            opened_lines,
            entries_len,
            failures
        );
    }
    if not_sealed > 3 {
        say!(
            "hedui: {}: {} more lines are not sealed reports (is this a reports.jsonl of `hedui batch` or a saved sealed_report?)",
            file.display(),
            not_sealed - 3
        );
    }
    if let Some(h) = household
        && !found
        && failures == 0
    {
        let shown = if h.chars().filter(char::is_ascii_digit).count() >= 15 {
            crate::domain::mask(h)
        } else {
            h.to_string()
        };
        // how the file's households are spelled, from its first report id (the session 28
        // trial asked for 620503H0000003, `hedui gen`'s spelling, of gen.py's HH6205030000003)
        let example = text
            .lines()
            .find_map(|l| {
                let at = l.find("\"report_id\":\"")? + 13;
                let rid = &l[at..at + l[at..].find('"')?];
                rid.split_once('/').map(|(_, h)| h.to_string())
            })
            .filter(|h| {
                h.is_ascii() && h.len() <= 40 && !crate::domain::id_number::holds_id_like(h)
            });
        match example {
            Some(ex) => bail!(
                "no report for household {shown} in {} (its households are spelled like {ex})",
                file.display()
            ),
            None => bail!("no report for household {shown} in {}", file.display()),
        }
    }
    Ok(if failures > 0 { 1 } else { 0 })
}

/// Print a short summary table (counts by determination and by rule).
pub fn print_summary(s: &Summary, out: &Path) {
    let n = s.households.max(1) as f64;
    out!(
        "run {}  as of {}  policy {}  households {}",
        s.run_id,
        s.as_of,
        s.policy,
        s.households
    );
    // the label column is as wide as its longest label ("household_composition referred")
    let rule_rows: Vec<(String, u64)> = s
        .rules
        .iter()
        .flat_map(|(rule, outs)| {
            outs.iter()
                .filter(|(o, _)| o.as_str() != "eligible")
                .map(move |(o, v)| (format!("{rule} {o}"), *v))
        })
        .collect();
    let w = s
        .determination
        .keys()
        .map(|d| d.chars().count())
        .chain(rule_rows.iter().map(|(l, _)| l.chars().count()))
        .max()
        .unwrap_or(0)
        .max(24)
        + 2;
    out!(
        "  {:<w$}{:>10}{:>9}",
        "determination",
        "households",
        "share"
    );
    for (d, v) in &s.determination {
        out!("  {:<w$}{:>10}{:>8.2}%", d, v, 100.0 * *v as f64 / n);
    }
    out!("  {:<w$}{:>10}", "rule / outcome", "households");
    for (label, v) in &rule_rows {
        out!("  {label:<w$}{v:>10}");
    }
    let unverified: Vec<&str> = s
        .sources
        .iter()
        .filter(|(_, v)| v.status != "answered")
        .map(|(k, _)| k.as_str())
        .collect();
    out!(
        "  review due: {}   quarantined: {}   unverified sources: {}",
        s.review_due,
        s.quarantine.values().sum::<u64>(),
        if unverified.is_empty() {
            "none".to_string()
        } else {
            unverified.join(", ")
        }
    );
    out!(
        "  timings (ms): {}",
        s.timings_ms
            .iter()
            // (a memory-limited run's count of slices is no time: printed on its own below)
            .filter(|(k, _)| k.as_str() != "slices")
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(n) = s.timings_ms.get("slices") {
        out!("  slices: {n} (memory limit)");
    }
    // the files this run wrote (an incremental run writes changes.json and, for now, no
    // normalisations.csv: its source rows' repairs are those of the previous run and the delta)
    let written: Vec<&str> = [
        "reports.jsonl",
        "summary.json",
        "summary.html",
        "quarantine.csv",
        "normalisations.csv",
        "determinations.csv",
        "changes.json",
        "state/",
    ]
    .into_iter()
    .filter(|f| out.join(f).exists())
    .collect();
    out!(
        "  outputs: {}/{{{}}}",
        out.display().to_string().trim_end_matches('/'),
        written.join(", ")
    );
}

fn token(action: TokenAction) -> Result<i32> {
    let (store, role, region, label) = match action {
        TokenAction::Add {
            store,
            role,
            region,
            label,
        } => (store, role, region, label),
        TokenAction::Revoke { store, id } => {
            if !store.is_file() {
                bail!("--store {}: no such file", store.display());
            }
            let s = crate::audit::Store::open(&store, b"")
                .with_context(|| format!("Failed to open the store {}", store.display()))?;
            if s.token_by_id(&id)?.is_none() {
                bail!("--id {id}: no such token");
            }
            // the revocation and its audit row in one transaction
            s.revoke_token(&id, |was_active| {
                vec![crate::audit::AuditEvent::token_revoked(
                    "cli", &id, was_active,
                )]
            })?;
            out!("token {id} revoked");
            return Ok(0);
        }
    };
    let roles = role
        .iter()
        .map(|r| {
            crate::audit::Role::parse(r)
                .with_context(|| format!("--role {r}: one of intake, auditor, admin"))
        })
        .collect::<Result<Vec<_>>>()?;
    for r in &region {
        if !(r == "*" || (!r.is_empty() && r.len() <= 6 && r.bytes().all(|b| b.is_ascii_digit()))) {
            bail!(
                "--region {}: a region-code prefix of 1-6 digits, or *",
                typed(r)
            );
        }
    }
    // as `POST /v1/tokens` (label_invalid): the label is stored and listed
    if crate::verify::request::holds_id_like(&label) {
        bail!("--label must not hold an ID number (it is stored and listed)");
    }
    let s = crate::audit::Store::open(&store, b"")
        .with_context(|| format!("Failed to open the store {}", store.display()))?;
    // the token and its audit row in one transaction
    let (id, secret) = s.create_token(&roles, &region, &label, |id| {
        vec![crate::audit::AuditEvent::token_created("cli", id)]
    })?;
    out!("{id} {secret}");
    say!(
        "token {id} created; its secret (hd_…, printed on standard output) is shown once (only its SHA-256 is stored)"
    );
    Ok(0)
}

fn audit(action: AuditAction) -> Result<i32> {
    let AuditAction::Verify { store } = action;
    if !store.is_file() {
        bail!("--store {}: no such file", store.display());
    }
    let s = crate::audit::Store::open(&store, b"")
        .with_context(|| format!("Failed to open the store {}", store.display()))?;
    let c = s.verify_chain()?;
    // every consent and token act has its row (the chain alone cannot tell a missing one)
    let unaudited = s.unaudited_acts()?;
    for act in &unaudited {
        out!("audit: {act} without its audit row");
    }
    match c.first_bad {
        None if unaudited.is_empty() => {
            out!("audit chain ok: {} rows, head {}", c.rows, c.head);
            Ok(0)
        }
        None => {
            out!(
                "audit chain ok: {} rows, head {}; but {} act(s) without their audit row",
                c.rows,
                c.head,
                unaudited.len()
            );
            Ok(1)
        }
        Some((seq, why)) => {
            out!("audit chain BROKEN at row {seq}: {why}");
            Ok(1)
        }
    }
}

/// Why a line is not a sealed envelope, without any value of it: serde_json's messages quote
/// a value of the wrong type (a wrong file may hold ID numbers or names), and an unknown
/// field's name may be one. Only "missing field" (whose name is the envelope's own) is kept.
fn envelope_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let what = match e.classify() {
        serde_json::error::Category::Data if msg.starts_with("missing field") => msg
            .split(" at line")
            .next()
            .unwrap_or("missing field")
            .to_string(),
        serde_json::error::Category::Data => {
            "not the sealed-report shape (a field of the wrong type or not of an envelope)".into()
        }
        serde_json::error::Category::Eof => "the text ends early (cut short?)".into(),
        serde_json::error::Category::Syntax => "not JSON".into(),
        serde_json::error::Category::Io => "unreadable".into(),
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// A value typed on the command line as an error quotes it: masked when it is long enough to
/// be an ID number (15 characters or more: an ID typed where a region code was meant is not
/// printed, nor logged by a terminal recorder), else quoted as typed.
fn typed(v: &str) -> String {
    if v.chars().count() >= 15 {
        crate::ingest::quarantine::mask_value(v)
    } else {
        format!("{v:?}")
    }
}
