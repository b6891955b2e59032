//! Integrations as a lead sets them up (connectors, member mappings, the
//! pusher) and the outbox every replica fills: a change with consequences
//! outside the hub enqueues its deliveries in the same commit that makes it.

use super::Hub;
use crate::model::hlc::wall_now_ms;
use crate::model::ids::new_entity_id;
use crate::model::integration::{
    Connector, ConnectorKind, Delivery, DeliveryAction, DeliveryStatus, HookEvent, PUSH_ENTITY,
    PushSettings, check_connector_name, create_delivery_id,
};
use crate::model::task::Task;
use crate::model::{Change, EntityKind, EntityRef, InputError};
use anyhow::Result;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Settings each kind needs, and the ones it may have.
fn settings_of(kind: ConnectorKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        ConnectorKind::Jira => (
            &["url", "email", "project"],
            &["url", "email", "project", "issue_type", "labels"],
        ),
        ConnectorKind::Asana => (&["workspace", "project"], &["url", "workspace", "project"]),
        ConnectorKind::Webhook => (&["url"], &["url"]),
    }
}

fn check_url(connector: &str, url: &str) -> Result<(), InputError> {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(InputError::new(format!(
            "connector {connector}: url `{url}` must be an http:// or https:// address"
        ))),
    }
}

impl Hub {
    /// Every connector of the hub, deleted ones left out.
    pub fn connectors(&self) -> Result<Vec<Connector>> {
        Ok(self
            .replica
            .records(EntityKind::Integration)?
            .into_iter()
            .filter(|(id, _)| id != PUSH_ENTITY)
            .filter_map(|(id, rec)| Connector::from_record(&id, &rec))
            .filter(|c| !c.deleted)
            .collect())
    }

    pub fn connector(&self, name: &str) -> Result<Connector> {
        let name = name.trim();
        self.connectors()?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                InputError::new(format!(
                    "no connector `{name}` (see `spoke integrations list`)"
                ))
                .into()
            })
    }

    /// Adds (or replaces) a connector. Settings are checked for the kind;
    /// webhooks with no events listed get every event.
    pub fn add_connector(
        &mut self,
        name: &str,
        kind: ConnectorKind,
        settings: &BTreeMap<String, String>,
        events: &[HookEvent],
    ) -> Result<Connector> {
        let name = check_connector_name(name)?;
        if name == PUSH_ENTITY {
            return Err(InputError::new("that connector name is reserved").into());
        }
        let (required, allowed) = settings_of(kind);
        for key in settings.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(InputError::new(format!(
                    "connector {name}: {} takes no setting `{key}` (settings: {})",
                    kind.name(),
                    allowed.join(", ")
                ))
                .into());
            }
        }
        for key in required {
            if settings.get(*key).is_none_or(|v| v.trim().is_empty()) {
                return Err(InputError::new(format!(
                    "connector {name}: {} needs --set {key}=…",
                    kind.name()
                ))
                .into());
            }
        }
        if let Some(url) = settings.get("url") {
            check_url(&name, url)?;
        }
        if !kind.is_tracker() && events.is_empty() {
            // A webhook hears everything unless told otherwise.
        } else if kind.is_tracker() && !events.is_empty() {
            return Err(InputError::new(format!(
                "connector {name}: events are for webhooks; {} receives approved tasks",
                kind.name()
            ))
            .into());
        }
        let events: Vec<HookEvent> = if kind == ConnectorKind::Webhook && events.is_empty() {
            HookEvent::ALL.to_vec()
        } else {
            events.to_vec()
        };
        let entity = EntityRef::new(EntityKind::Integration, name.clone());
        let old = self.replica.record(&entity)?;
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        fields.insert("kind".into(), json!(kind));
        fields.insert("deleted".into(), json!(false));
        if let Some(old) = &old {
            // Replacing: settings and events not given again are cleared.
            for key in old.map_entries("setting").keys() {
                fields.insert(format!("setting:{key}"), Value::Null);
            }
            for e in old.set_members("event") {
                fields.insert(format!("event:{e}"), json!(false));
            }
        }
        for (key, value) in settings {
            fields.insert(format!("setting:{key}"), json!(value.trim()));
        }
        for e in &events {
            fields.insert(format!("event:{}", e.name()), json!(true));
        }
        self.commit_as_lead(vec![(entity, Change::Set(fields))], "set up connectors")?;
        self.connector(&name)
    }

    pub fn remove_connector(&mut self, name: &str) -> Result<()> {
        let c = self.connector(name)?;
        let entity = EntityRef::new(EntityKind::Integration, c.name);
        self.commit_as_lead(
            vec![(
                entity,
                Change::Set(BTreeMap::from([("deleted".into(), json!(true))])),
            )],
            "remove connectors",
        )
    }

    /// Maps a member to its account in the connector's tracker (`None`
    /// removes the mapping).
    pub fn map_connector_member(
        &mut self,
        name: &str,
        handle: &str,
        external: Option<&str>,
    ) -> Result<()> {
        let c = self.connector(name)?;
        let handle = handle.trim().trim_start_matches('@');
        if self.member(handle)?.is_none() {
            return Err(InputError::new(format!("there is no member @{handle}")).into());
        }
        let value = match external.map(str::trim) {
            Some("") => {
                return Err(InputError::new("the account id is empty").into());
            }
            Some(id) => json!(id),
            None => Value::Null,
        };
        let entity = EntityRef::new(EntityKind::Integration, c.name);
        self.commit_as_lead(
            vec![(
                entity,
                Change::Set(BTreeMap::from([(format!("member:{handle}"), value)])),
            )],
            "map members",
        )
    }

    pub fn push_settings(&self) -> Result<PushSettings> {
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Integration, PUSH_ENTITY))?;
        Ok(PushSettings::from_record(rec.as_ref()))
    }

    /// Names the member whose replica delivers the outbox, and how often
    /// trackers are read back.
    pub fn set_pusher(&mut self, handle: Option<&str>, poll_secs: Option<u64>) -> Result<()> {
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        if let Some(handle) = handle {
            let handle = handle.trim().trim_start_matches('@');
            let member = self
                .member(handle)?
                .filter(|m| !m.deleted)
                .ok_or_else(|| InputError::new(format!("there is no member @{handle}")))?;
            if member.has_role(crate::model::Role::ReadOnly) && member.roles.len() == 1 {
                return Err(InputError::new(format!("@{handle} is read-only")).into());
            }
            fields.insert("pusher".into(), json!(handle));
        }
        if let Some(secs) = poll_secs {
            if !(10..=86_400).contains(&secs) {
                return Err(InputError::new("the poll interval is 10 to 86400 seconds").into());
            }
            fields.insert("poll_secs".into(), json!(secs));
        }
        if fields.is_empty() {
            return Ok(());
        }
        self.commit_as_lead(
            vec![(
                EntityRef::new(EntityKind::Integration, PUSH_ENTITY),
                Change::Set(fields),
            )],
            "name the pusher",
        )
    }

    /// The outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<Delivery>> {
        let mut out: Vec<Delivery> = self
            .replica
            .records(EntityKind::Delivery)?
            .iter()
            .map(|(id, rec)| Delivery::from_record(id, rec))
            .filter(|d| !d.deleted)
            .collect();
        out.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn delivery(&self, typed_id: &str) -> Result<Delivery> {
        let id = self.resolve_id(EntityKind::Delivery, typed_id, "d")?;
        let rec = self
            .replica
            .record(&EntityRef::new(EntityKind::Delivery, id.clone()))?
            .unwrap_or_default();
        Ok(Delivery::from_record(&id, &rec))
    }

    /// Puts a failed (or dropped) item back in the queue, attempts reset.
    pub fn retry_delivery(&mut self, typed_id: &str) -> Result<Delivery> {
        let d = self.delivery(typed_id)?;
        if d.status == DeliveryStatus::Done {
            return Err(InputError::new(format!("{} was delivered already", d.id)).into());
        }
        let fields = BTreeMap::from([
            ("status".to_owned(), json!(DeliveryStatus::Pending)),
            ("attempts".to_owned(), json!(0)),
            ("next_at".to_owned(), Value::Null),
            ("last_error".to_owned(), Value::Null),
        ]);
        self.commit_as_lead(
            vec![(
                EntityRef::new(EntityKind::Delivery, d.id.clone()),
                Change::Set(fields),
            )],
            "retry deliveries",
        )?;
        self.delivery(&d.id)
    }

    /// Takes an item out of the queue for good.
    pub fn drop_delivery(&mut self, typed_id: &str) -> Result<Delivery> {
        let d = self.delivery(typed_id)?;
        if d.status == DeliveryStatus::Done {
            return Err(InputError::new(format!("{} was delivered already", d.id)).into());
        }
        let fields = BTreeMap::from([("status".to_owned(), json!(DeliveryStatus::Dropped))]);
        self.commit_as_lead(
            vec![(
                EntityRef::new(EntityKind::Delivery, d.id.clone()),
                Change::Set(fields),
            )],
            "drop deliveries",
        )?;
        self.delivery(&d.id)
    }

    /// A brief's tasks, in the order they were made.
    pub fn tasks_of_brief(&self, brief: &str) -> Result<Vec<Task>> {
        Ok(self
            .tasks()?
            .into_iter()
            .filter(|t| t.brief.as_deref() == Some(brief))
            .collect())
    }

    /// Every task of the hub, in the order they were made.
    pub fn tasks(&self) -> Result<Vec<Task>> {
        let mut tasks: Vec<(u64, Task)> = self
            .replica
            .records(EntityKind::Task)?
            .iter()
            .map(|(id, rec)| {
                let at = rec.first_stamp().map(|s| s.hlc.wall_ms).unwrap_or(0);
                (at, Task::from_record(id, rec))
            })
            .filter(|(_, t)| !t.deleted)
            .collect();
        tasks.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
        Ok(tasks.into_iter().map(|(_, t)| t).collect())
    }

    pub fn task(&self, id: &str) -> Result<Option<Task>> {
        Ok(self
            .replica
            .record(&EntityRef::new(EntityKind::Task, id))?
            .map(|rec| Task::from_record(id, &rec))
            .filter(|t| !t.deleted))
    }

    /// The deliveries `changes` call for, to commit with them: a create per
    /// tracker for each task an approval makes, and an event per webhook
    /// that listens for what the changes do.
    pub(crate) fn outbox_changes(
        &self,
        changes: &[(EntityRef, Change)],
    ) -> Result<Vec<(EntityRef, Change)>> {
        let interesting = changes.iter().any(|(e, c)| {
            matches!(c, Change::Set(_))
                && matches!(
                    e.kind,
                    EntityKind::Brief | EntityKind::Task | EntityKind::Proposal | EntityKind::Asset
                )
        });
        if !interesting {
            return Ok(Vec::new());
        }
        let connectors = self.connectors()?;
        if connectors.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut enqueue = |id: String, fields: Vec<(&str, Value)>| {
            let mut set: BTreeMap<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            set.insert("status".into(), json!(DeliveryStatus::Pending));
            set.insert("attempts".into(), json!(0));
            out.push((EntityRef::new(EntityKind::Delivery, id), Change::Set(set)));
        };
        for (entity, change) in changes {
            let Change::Set(fields) = change else {
                continue;
            };
            let old = self.replica.record(entity)?;
            let existed = old.as_ref().is_some_and(|r| r.first_stamp().is_some());
            let mut events: Vec<(HookEvent, Value, String)> = Vec::new();
            match entity.kind {
                EntityKind::Task if !existed && fields.contains_key("from_proposal") => {
                    for c in connectors.iter().filter(|c| c.kind.is_tracker()) {
                        enqueue(
                            create_delivery_id(&c.name, &entity.id),
                            vec![
                                ("connector", json!(c.name)),
                                ("action", json!(DeliveryAction::Create)),
                                ("task", json!(entity.id)),
                            ],
                        );
                    }
                    events.push((
                        HookEvent::TaskCreated,
                        json!({"task": entity.id, "title": fields.get("title"),
                               "brief": fields.get("brief"), "assignee": fields.get("assignee"),
                               "proposal": fields.get("from_proposal")}),
                        entity.id.clone(),
                    ));
                }
                EntityKind::Brief if !existed && fields.contains_key("title") => {
                    events.push((
                        HookEvent::BriefCreated,
                        json!({"brief": entity.id, "title": fields.get("title"),
                               "status": fields.get("status"), "priority": fields.get("priority"),
                               "requester": fields.get("requester")}),
                        entity.id.clone(),
                    ));
                }
                EntityKind::Brief if existed => {
                    if let Some(to) = fields.get("status") {
                        let from = old.as_ref().and_then(|r| r.get("status").cloned());
                        if from.as_ref() != Some(to) {
                            events.push((
                                HookEvent::BriefStatus,
                                json!({"brief": entity.id, "from": from, "to": to,
                                       "title": old.as_ref().and_then(|r| r.get("title").cloned())}),
                                new_entity_id("s"),
                            ));
                        }
                    }
                }
                EntityKind::Proposal | EntityKind::Asset => {
                    let (Some(approval), Some(status)) = (
                        fields.get("approval").and_then(Value::as_str),
                        fields.get("status").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let already = old
                        .as_ref()
                        .is_some_and(|r| r.string("approval").as_deref() == Some(approval));
                    if already {
                        continue;
                    }
                    let subject = json!({"kind": entity.kind.as_str(), "id": entity.id});
                    events.push((
                        HookEvent::ApprovalClosed,
                        json!({"approval": approval, "subject": subject, "outcome": status}),
                        approval.to_owned(),
                    ));
                    if entity.kind == EntityKind::Asset && status == "approved" {
                        events.push((
                            HookEvent::AssetApproved,
                            json!({"asset": entity.id, "approval": approval,
                                   "title": old.as_ref().and_then(|r| r.get("title").cloned())}),
                            format!("{}-{approval}", entity.id),
                        ));
                    }
                }
                _ => {}
            }
            for (event, data, key) in events {
                for c in connectors
                    .iter()
                    .filter(|c| c.kind == ConnectorKind::Webhook && c.events.contains(&event))
                {
                    let body = json!({
                        "type": event.name(),
                        "timestamp": jiff::Timestamp::from_millisecond(wall_now_ms() as i64)
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                        "hub": self.hub_id(),
                        "data": data,
                    });
                    enqueue(
                        format!("d-{}-{}-{key}", c.name, event.name().replace('.', "-")),
                        vec![
                            ("connector", json!(c.name)),
                            ("action", json!(DeliveryAction::Event)),
                            ("event", body),
                        ],
                    );
                }
            }
        }
        Ok(out)
    }
}

impl Hub {
    /// Changes a task's status, title, assignee or due date. A lead changes
    /// any task; its assignee moves its own.
    pub fn set_task_fields(&mut self, id: &str, pairs: &[(String, String)]) -> Result<Task> {
        let id = self.resolve_id(EntityKind::Task, id, "t")?;
        let Some(task) = self.task(&id)? else {
            return Err(InputError::new(format!("task {id} was deleted")).into());
        };
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for (key, value) in pairs {
            match key.as_str() {
                "status" => {
                    let status: crate::model::task::TaskStatus = serde_json::from_value(json!(
                        value.to_ascii_lowercase()
                    ))
                    .map_err(|_| {
                        InputError::new(format!("task status `{value}`: todo, doing or done"))
                    })?;
                    fields.insert("status".into(), json!(status));
                }
                "title" if value.trim().is_empty() => {
                    return Err(InputError::new("a task needs a title").into());
                }
                "title" => {
                    fields.insert("title".into(), json!(value.trim()));
                }
                "assignee" if value.trim().is_empty() => {
                    fields.insert("assignee".into(), Value::Null);
                }
                "assignee" => {
                    let handle = value.trim().trim_start_matches('@');
                    if self.member(handle)?.is_none() {
                        return Err(InputError::new(format!("there is no member @{handle}")).into());
                    }
                    fields.insert("assignee".into(), json!(handle));
                }
                "due" if value.trim().is_empty() => {
                    fields.insert("due".into(), Value::Null);
                }
                "due" => {
                    let zone = self.zone();
                    fields.insert(
                        "due".into(),
                        json!(crate::model::brief::Due::parse(value, &zone)?),
                    );
                }
                other => {
                    return Err(InputError::new(format!(
                        "a task has no field `{other}`: status, title, assignee, due"
                    ))
                    .into());
                }
            }
        }
        match self.commit(vec![(
            EntityRef::new(EntityKind::Task, task.id.clone()),
            Change::Set(fields),
        )]) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.downcast_ref::<crate::store::StoreError>(),
                    Some(crate::store::StoreError::Refused(_))
                ) =>
            {
                return Err(e.context(format!(
                    "only a lead, or the task's assignee, changes task {}",
                    task.id
                )));
            }
            Err(e) => return Err(e),
        }
        self.task(&task.id)?
            .ok_or_else(|| InputError::new(format!("task {} was deleted", task.id)).into())
    }
}
