//! `banli profile`: show the profile in force, or check a file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use banli_domain::RuleProfile;
use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Print the rule profile in force (`--profile`) as TOML.
    Show,
    /// Validate a profile file; exits non-zero naming the key and the reason.
    Check { file: PathBuf },
}

pub fn run(config: &Config, cmd: ProfileCommand) -> Result<()> {
    match cmd {
        ProfileCommand::Show => {
            let p = config.rule_profile()?;
            print!("{}", toml::to_string_pretty(&p)?);
            Ok(())
        }
        ProfileCommand::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let p = RuleProfile::from_toml_str(&file.display().to_string(), &text)?;
            println!("{}: profile `{}` is valid", file.display(), p.name);
            Ok(())
        }
    }
}
