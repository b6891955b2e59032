//! `spoke member ...`

use super::Ctx;
use super::output::{outln, print_json, print_table, short_time};
use crate::model::member::Role;
use crate::service::NewMember;
use anyhow::Result;
use clap::Subcommand;
use jiff::Timestamp;

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a member (a person or an agent)
    Add {
        /// Handle: lowercase letters, digits, `.`, `_`, `-`
        handle: String,
        /// IANA time zone, e.g. America/New_York
        #[arg(long)]
        tz: String,
        /// Role: lead, creative, reviewer, requester, agent or read-only (repeat or comma-separate)
        #[arg(long = "role", value_delimiter = ',', default_value = "creative")]
        roles: Vec<String>,
        /// Working hours in their zone, e.g. 09:00-17:30
        #[arg(long)]
        hours: Option<String>,
        /// Working days for --hours, e.g. mon-fri (default), sun-thu, mon,wed,fri
        #[arg(long, requires = "hours")]
        days: Option<String>,
        /// Skills, comma-separated, e.g. motion,copy,3d
        #[arg(long, value_delimiter = ',')]
        skills: Vec<String>,
        /// Display name [default: the handle]
        #[arg(long)]
        name: Option<String>,
        /// Briefs they can carry at once [default: 3]
        #[arg(long)]
        capacity: Option<u32>,
    },
    /// List members with their local time
    List,
    /// Set a member's roles (leads only): the hub honours them from the next op on
    Role {
        handle: String,
        /// lead, creative, reviewer, requester, agent or read-only (comma-separate several)
        #[arg(value_delimiter = ',', required = true)]
        roles: Vec<String>,
    },
}

pub fn run(ctx: &Ctx, cmd: MemberCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        MemberCommand::Add {
            handle,
            tz,
            roles,
            hours,
            days,
            skills,
            name,
            capacity,
        } => {
            let roles = roles
                .iter()
                .map(|r| Role::parse(r).map_err(crate::model::InputError::from))
                .collect::<Result<Vec<_>, _>>()?;
            let member = hub.add_member(NewMember {
                handle,
                name,
                tz,
                roles,
                hours,
                days,
                skills,
                capacity,
            })?;
            if ctx.json {
                print_json(&member)
            } else {
                outln!("{}", member.handle)?;
                Ok(())
            }
        }
        MemberCommand::Role { handle, roles } => {
            let roles = roles
                .iter()
                .map(|r| Role::parse(r).map_err(crate::model::InputError::from))
                .collect::<Result<Vec<_>, _>>()?;
            let member = hub.set_member_roles(&handle, &roles)?;
            if ctx.json {
                print_json(&member)
            } else {
                let names: Vec<&str> = member.roles.iter().map(|r| r.as_str()).collect();
                outln!("@{}: {}", member.handle, names.join(", "))?;
                Ok(())
            }
        }
        MemberCommand::List => {
            let members = hub.members()?;
            let now = Timestamp::now();
            if ctx.json {
                let rows: Vec<_> = members
                    .iter()
                    .map(|m| {
                        let mut v = serde_json::to_value(m).unwrap_or_default();
                        v["local_time"] = m.local_time(now).to_string().into();
                        v["working_now"] = m.is_working_at(now).into();
                        v
                    })
                    .collect();
                return print_json(&rows);
            }
            let rows: Vec<Vec<String>> = members
                .iter()
                .map(|m| {
                    let roles: Vec<_> = m.roles.iter().map(|r| r.as_str()).collect();
                    vec![
                        m.handle.clone(),
                        m.name.clone(),
                        roles.join(","),
                        m.tz.clone(),
                        short_time(now, &m.tz),
                        if m.is_working_at(now) {
                            "working"
                        } else {
                            "off"
                        }
                        .to_owned(),
                        m.skills.join(","),
                    ]
                })
                .collect();
            print_table(
                &[
                    "HANDLE",
                    "NAME",
                    "ROLES",
                    "ZONE",
                    "LOCAL TIME",
                    "NOW",
                    "SKILLS",
                ],
                &rows,
            )?;
            Ok(())
        }
    }
}
