//! `hedui link …`: the command-line side of the linker (prints a table and one JSON line).

use anyhow::{Context, Result};

use super::model::Schema;
use crate::cli::LinkCommand;

/// Run a `hedui link` subcommand; returns the exit code.
///
/// # Errors
/// Unreadable files or a schema that does not fit them (exit code 2 by the caller).
pub fn run(cmd: LinkCommand) -> Result<i32> {
    match cmd {
        LinkCommand::Eval {
            left,
            right,
            truth,
            schema,
            plot,
        } => {
            let schema = match schema {
                Some(p) => Schema::from_toml(
                    &std::fs::read_to_string(&p)
                        .with_context(|| format!("Failed to read {}", p.display()))?,
                )
                .with_context(|| format!("Failed to load {}", p.display()))?,
                None => Schema::febrl(),
            };
            let r = super::eval::eval(&left, &right, &truth, &schema, plot)
                .context("Failed to evaluate")?;
            println!(
                "records {} x {}, true pairs {}, pairs compared {}, blocking recall {:.4}",
                r.records[0], r.records[1], r.true_pairs, r.pairs_compared, r.blocking_recall
            );
            println!(
                "{:<26} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6}",
                "", "threshold", "precision", "recall", "F1", "fp", "fn"
            );
            for (label, p) in [
                ("at match", &r.at_match),
                ("at possible_match", &r.at_possible_match),
                ("best F1", &r.best),
                ("one-to-one at match", &r.one_to_one_at_match),
                ("one-to-one best F1", &r.one_to_one_best),
            ] {
                println!(
                    "{label:<26} {:>9.2} {:>9.4} {:>9.4} {:>9.4} {:>6} {:>6}",
                    p.threshold, p.precision, p.recall, p.f1, p.fp, p.fn_
                );
            }
            println!(
                "seconds: {}",
                r.seconds
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!(
                "{}",
                serde_json::to_string(&r).context("Failed to serialise")?
            );
            Ok(0)
        }
    }
}
