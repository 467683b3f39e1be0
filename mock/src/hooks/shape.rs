//! The documented request shape of each receiver kind, checked as the real
//! service would refuse a request: a bad shape is a reason, which the
//! recording endpoint answers with a 400.
//!
//! | kind | what is checked |
//! |---|---|
//! | `webhook` | the monitor's payload version 1: `version` 1, a known `event`, `occurred_at` RFC 3339, `incident`/`job`/`rule` objects with their ids and names (null for `event: "test"`, which has a `message`); `event: "group"` with `count` and `events`, each a version-1 incident event |
//! | `slack` | `text` (1 to 40 000 characters) or `blocks` (at most 50, each with a `type`; section text at most 3000) |
//! | `discord` | `content` (at most 2000) or `embeds` (at most 10; title ≤ 256, description ≤ 4096, ≤ 25 fields with non-empty name ≤ 256 and value ≤ 1024, footer ≤ 2048, 6000 characters in all; `color` 0 to 0xFFFFFF) |
//! | `teams` | `type` "message", `attachments` (1 or more), each `contentType` `application/vnd.microsoft.card.adaptive` with `content` an `AdaptiveCard` of version 1.0 to 1.5 whose `body` elements have a `type`; at most 28 KB |
//! | `telegram` | a bot token `<digits>:<letters, digits, - _>` in the path; `chat_id` an integer, a numeric string or `@username`; `text` 1 to 4096 characters after entity parsing; `parse_mode` HTML, MarkdownV2 or Markdown; HTML with only Telegram's tags, balanced, and `&` only in entities |
//! | `pagerduty` | Events API v2 enqueue: `routing_key` of 32 characters, `event_action` trigger, acknowledge or resolve, `dedup_key` at most 255 (required unless trigger), on trigger a `payload` with `summary` (1 to 1024), `source`, `severity` critical/error/warning/info and an RFC 3339 `timestamp` if given; `links` with `href` |

use serde_json::Value;

/// The receiver kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Webhook,
    Slack,
    Discord,
    Teams,
    Telegram,
    PagerDuty,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Webhook,
        Kind::Slack,
        Kind::Discord,
        Kind::Teams,
        Kind::Telegram,
        Kind::PagerDuty,
    ];

    /// The path segment naming the kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::Discord => "discord",
            Kind::Teams => "teams",
            Kind::Telegram => "telegram",
            Kind::PagerDuty => "pagerduty",
        }
    }

    pub fn of(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// Why a body is refused.
pub type Problem = String;

/// Checks `body` (already parsed JSON) as `kind` would; `token` is the bot
/// token from a Telegram path.
pub fn check(kind: Kind, body: &Value, token: Option<&str>) -> Result<(), Problem> {
    if !body.is_object() {
        return Err("the body must be a JSON object".into());
    }
    match kind {
        Kind::Webhook => webhook(body),
        Kind::Slack => slack(body),
        Kind::Discord => discord(body),
        Kind::Teams => teams(body),
        Kind::Telegram => telegram(body, token.unwrap_or_default()),
        Kind::PagerDuty => pagerduty(body),
    }
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn string<'a>(body: &'a Value, field: &str) -> Result<&'a str, Problem> {
    match body.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{field}` must be a string")),
        None => Err(format!("`{field}` is required")),
    }
}

fn optional_string<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, Problem> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{field}` must be a string")),
    }
}

fn at_most(field: &str, value: &Value, max: usize) -> Result<(), Problem> {
    let n = chars(value);
    if n > max {
        return Err(format!("`{field}` is {n} characters; at most {max}"));
    }
    Ok(())
}

fn rfc3339(field: &str, value: &str) -> Result<(), Problem> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|_| ())
        .map_err(|_| format!("`{field}` {value:?} is not an RFC 3339 time"))
}

fn uuid(field: &str, value: &Value) -> Result<(), Problem> {
    let text = value.as_str().unwrap_or_default();
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if text.len() == 36 && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("`{field}` must be a UUID string"))
    }
}

const WEBHOOK_EVENTS: &[&str] = &[
    "opened",
    "reminder",
    "acknowledged",
    "resolved",
    "flapping",
    "flapping_ended",
    "test",
    "group",
];

fn webhook(body: &Value) -> Result<(), Problem> {
    if body.get("version") != Some(&Value::from(1)) {
        return Err("`version` must be 1".into());
    }
    let event = string(body, "event")?;
    if !WEBHOOK_EVENTS.contains(&event) {
        return Err(format!("`event` {event:?} is not one of {}", WEBHOOK_EVENTS.join(", ")));
    }
    rfc3339("occurred_at", string(body, "occurred_at")?)?;
    if event == "group" {
        let events = body["events"]
            .as_array()
            .filter(|events| events.len() >= 2)
            .ok_or("`events` of a group must be an array of at least 2")?;
        if body["count"].as_u64() != Some(events.len() as u64) {
            return Err("`count` must be the number of `events`".into());
        }
        for (i, member) in events.iter().enumerate() {
            if matches!(member["event"].as_str(), Some("group" | "test")) {
                return Err(format!("events[{i}]: a group holds incident events only"));
            }
            webhook(member).map_err(|problem| format!("events[{i}]: {problem}"))?;
        }
        return Ok(());
    }
    if event == "test" {
        string(body, "message")?;
        for field in ["incident", "job", "rule"] {
            if !body.get(field).is_some_and(Value::is_null) {
                return Err(format!("`{field}` must be null in a test event"));
            }
        }
        return Ok(());
    }
    string(body, "dedup_key")?;
    let incident = body
        .get("incident")
        .filter(|v| v.is_object())
        .ok_or("`incident` must be an object")?;
    uuid("incident.id", &incident["id"])?;
    for field in ["cause", "severity", "state", "opened_at"] {
        string(incident, field).map_err(|p| format!("incident: {p}"))?;
    }
    rfc3339("incident.opened_at", string(incident, "opened_at")?)?;
    if !incident["failing_locations"].is_array() {
        return Err("`incident.failing_locations` must be an array".into());
    }
    let job = body
        .get("job")
        .filter(|v| v.is_object())
        .ok_or("`job` must be an object")?;
    uuid("job.id", &job["id"])?;
    string(job, "name").map_err(|p| format!("job: {p}"))?;
    body.get("rule")
        .filter(|v| v.is_object())
        .ok_or("`rule` must be an object")?;
    Ok(())
}

fn slack(body: &Value) -> Result<(), Problem> {
    let text = optional_string(body, "text")?;
    let blocks = match body.get("blocks") {
        None | Some(Value::Null) => None,
        Some(Value::Array(blocks)) => Some(blocks),
        Some(_) => return Err("`blocks` must be an array".into()),
    };
    if text.is_none_or(str::is_empty) && blocks.is_none_or(Vec::is_empty) {
        return Err("no_text: `text` or `blocks` is required".into());
    }
    if let Some(text) = text {
        at_most("text", &Value::from(text), 40_000)?;
    }
    let blocks = blocks.map(Vec::as_slice).unwrap_or_default();
    if blocks.len() > 50 {
        return Err(format!("`blocks` has {}; at most 50", blocks.len()));
    }
    for (i, block) in blocks.iter().enumerate() {
        let kind = string(block, "type").map_err(|p| format!("blocks[{i}]: {p}"))?;
        if kind == "section" {
            at_most(&format!("blocks[{i}].text.text"), &block["text"]["text"], 3000)?;
        }
    }
    Ok(())
}

fn discord(body: &Value) -> Result<(), Problem> {
    let content = optional_string(body, "content")?;
    let embeds = match body.get("embeds") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(embeds)) => embeds.as_slice(),
        Some(_) => return Err("`embeds` must be an array".into()),
    };
    if content.is_none_or(str::is_empty) && embeds.is_empty() {
        return Err("Cannot send an empty message: `content` or `embeds` is required".into());
    }
    if let Some(content) = content {
        at_most("content", &Value::from(content), 2000)?;
    }
    if embeds.len() > 10 {
        return Err(format!("`embeds` has {}; at most 10", embeds.len()));
    }
    let mut total = 0;
    for (i, embed) in embeds.iter().enumerate() {
        let at = |field: &str| format!("embeds[{i}].{field}");
        for (field, max) in [("title", 256), ("description", 4096)] {
            if let Some(value) = embed.get(field) {
                at_most(&at(field), value, max)?;
                total += chars(value);
            }
        }
        at_most(&at("footer.text"), &embed["footer"]["text"], 2048)?;
        total += chars(&embed["footer"]["text"]);
        at_most(&at("author.name"), &embed["author"]["name"], 256)?;
        total += chars(&embed["author"]["name"]);
        if let Some(color) = embed.get("color")
            && color.as_u64().is_none_or(|c| c > 0xFF_FFFF)
        {
            return Err(format!("`{}` must be an integer from 0 to 16777215", at("color")));
        }
        if let Some(timestamp) = embed.get("timestamp").filter(|v| !v.is_null()) {
            rfc3339(&at("timestamp"), timestamp.as_str().unwrap_or_default())?;
        }
        let fields = match embed.get("fields") {
            None => &[][..],
            Some(Value::Array(fields)) => fields.as_slice(),
            Some(_) => return Err(format!("`{}` must be an array", at("fields"))),
        };
        if fields.len() > 25 {
            return Err(format!("`{}` has {}; at most 25", at("fields"), fields.len()));
        }
        for (j, field) in fields.iter().enumerate() {
            for (part, max) in [("name", 256), ("value", 1024)] {
                let name = at(&format!("fields[{j}].{part}"));
                let value = string(field, part).map_err(|_| format!("`{name}` is required"))?;
                if value.is_empty() {
                    return Err(format!("`{name}` must not be empty"));
                }
                at_most(&name, &field[part], max)?;
                total += value.chars().count();
            }
        }
    }
    if total > 6000 {
        return Err(format!("the embeds hold {total} characters; at most 6000 in all"));
    }
    Ok(())
}

fn teams(body: &Value) -> Result<(), Problem> {
    let size = body.to_string().len();
    if size > 28 * 1024 {
        return Err(format!("the message is {size} bytes; at most 28 KB"));
    }
    if string(body, "type")? != "message" {
        return Err("`type` must be \"message\"".into());
    }
    let attachments = body["attachments"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or("`attachments` must be a non-empty array")?;
    for (i, attachment) in attachments.iter().enumerate() {
        let at = |field: &str| format!("attachments[{i}].{field}");
        if attachment["contentType"] != "application/vnd.microsoft.card.adaptive" {
            return Err(format!(
                "`{}` must be \"application/vnd.microsoft.card.adaptive\"",
                at("contentType")
            ));
        }
        let card = &attachment["content"];
        if card["type"] != "AdaptiveCard" {
            return Err(format!("`{}` must be \"AdaptiveCard\"", at("content.type")));
        }
        let version = card["version"].as_str().unwrap_or_default();
        if !["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"].contains(&version) {
            return Err(format!("`{}` {version:?} is not 1.0 to 1.5", at("content.version")));
        }
        let elements = card["body"]
            .as_array()
            .ok_or(format!("`{}` must be an array", at("content.body")))?;
        for (j, element) in elements.iter().enumerate() {
            string(element, "type").map_err(|p| format!("{}: {p}", at(&format!("content.body[{j}]"))))?;
        }
        if let Some(actions) = card.get("actions") {
            for (j, action) in actions.as_array().into_iter().flatten().enumerate() {
                let kind =
                    string(action, "type").map_err(|p| format!("{}: {p}", at(&format!("content.actions[{j}]"))))?;
                if kind == "Action.OpenUrl" {
                    string(action, "url").map_err(|p| format!("{}: {p}", at(&format!("content.actions[{j}]"))))?;
                }
            }
        }
    }
    Ok(())
}

/// Whether `token` is shaped like a bot token.
pub fn is_bot_token(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

const TELEGRAM_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
];

fn telegram(body: &Value, token: &str) -> Result<(), Problem> {
    if !is_bot_token(token) {
        return Err("Unauthorized: the path's bot token is not <digits>:<token>".into());
    }
    match body.get("chat_id") {
        Some(Value::Number(n)) if n.is_i64() => {}
        Some(Value::String(s))
            if s.strip_prefix('@').is_some_and(|name| name.len() >= 5)
                || s.strip_prefix('-').unwrap_or(s).parse::<u64>().is_ok() => {}
        Some(_) => return Err("Bad Request: chat not found (`chat_id` must be an integer or @username)".into()),
        None => return Err("Bad Request: chat_id is empty".into()),
    }
    let text = string(body, "text").map_err(|_| "Bad Request: message text is empty".to_owned())?;
    let visible = match optional_string(body, "parse_mode")? {
        None => text.chars().count(),
        Some("HTML") => html_text_len(text)?,
        Some("MarkdownV2" | "Markdown") => text.chars().count(),
        Some(other) => return Err(format!("Bad Request: unsupported parse_mode {other:?}")),
    };
    if visible == 0 {
        return Err("Bad Request: message text is empty".into());
    }
    if visible > 4096 {
        return Err(format!(
            "Bad Request: message is too long ({visible} characters; at most 4096)"
        ));
    }
    Ok(())
}

/// The length of Telegram HTML as text, refusing what Telegram cannot
/// parse: unknown or unbalanced tags, a bare `<` or `&`.
fn html_text_len(html: &str) -> Result<usize, Problem> {
    let cant = |what: String| Err(format!("Bad Request: can't parse entities: {what}"));
    let mut open: Vec<String> = Vec::new();
    let mut len = 0;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let Some(end) = rest.find('>') else {
                    return cant("unclosed start tag".into());
                };
                let tag = &rest[1..end];
                let (closing, tag) = match tag.strip_prefix('/') {
                    Some(name) => (true, name),
                    None => (false, tag),
                };
                let name = tag.split_whitespace().next().unwrap_or_default();
                if !TELEGRAM_TAGS.contains(&name) {
                    return cant(format!("unsupported start tag {name:?}"));
                }
                if closing {
                    if open.pop().as_deref() != Some(name) {
                        return cant(format!("unmatched end tag {name:?}"));
                    }
                } else {
                    open.push(name.to_owned());
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let Some(end) = rest.find(';').filter(|end| *end <= 10) else {
                    return cant("a bare & (write &amp;)".into());
                };
                let entity = &rest[1..end];
                let known = ["lt", "gt", "amp", "quot"].contains(&entity)
                    || entity
                        .strip_prefix('#')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if !known {
                    return cant(format!("unsupported entity &{entity};"));
                }
                len += 1;
                rest = &rest[end + 1..];
            }
            '>' => return cant("a bare > (write &gt;)".into()),
            _ => {
                len += 1;
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if let Some(unclosed) = open.pop() {
        return cant(format!("tag {unclosed:?} is not closed"));
    }
    Ok(len)
}

fn pagerduty(body: &Value) -> Result<(), Problem> {
    let key = string(body, "routing_key")?;
    if key.len() != 32 {
        return Err(format!("`routing_key` must be 32 characters (got {})", key.len()));
    }
    let action = string(body, "event_action")?;
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return Err(format!(
            "`event_action` {action:?} must be trigger, acknowledge or resolve"
        ));
    }
    match optional_string(body, "dedup_key")? {
        Some(key) if key.chars().count() > 255 => return Err("`dedup_key` is longer than 255 characters".into()),
        Some("") => return Err("`dedup_key` must not be empty".into()),
        None if action != "trigger" => return Err(format!("`dedup_key` is required to {action}")),
        _ => {}
    }
    if action == "trigger" {
        let payload = body
            .get("payload")
            .filter(|p| p.is_object())
            .ok_or("`payload` is required on trigger")?;
        let summary = string(payload, "summary").map_err(|p| format!("payload: {p}"))?;
        if summary.is_empty() || summary.chars().count() > 1024 {
            return Err("`payload.summary` must be 1 to 1024 characters".into());
        }
        if string(payload, "source")
            .map_err(|p| format!("payload: {p}"))?
            .is_empty()
        {
            return Err("`payload.source` must not be empty".into());
        }
        let severity = string(payload, "severity").map_err(|p| format!("payload: {p}"))?;
        if !["critical", "error", "warning", "info"].contains(&severity) {
            return Err(format!(
                "`payload.severity` {severity:?} must be critical, error, warning or info"
            ));
        }
        if let Some(timestamp) = optional_string(payload, "timestamp")? {
            rfc3339("payload.timestamp", timestamp)?;
        }
    }
    for (i, link) in body
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        string(link, "href").map_err(|p| format!("links[{i}]: {p}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TOKEN: &str = "123456:ABC-def_1";

    fn webhook_body() -> Value {
        json!({
            "version": 1, "event": "opened", "dedup_key": "k", "occurred_at": "2026-12-01T10:05:00.000Z",
            "incident": {"id": "0190a0a0-0000-7000-8000-000000000001", "cause": "down", "severity": "critical",
                         "state": "open", "opened_at": "2026-12-01T10:00:00.000Z", "failing_locations": []},
            "job": {"id": "0190a0a0-0000-7000-8000-000000000002", "name": "shop"},
            "rule": {"id": null, "name": "r"},
        })
    }

    fn refused(kind: Kind, body: Value) -> String {
        check(kind, &body, Some(TOKEN)).unwrap_err()
    }

    #[test]
    fn webhook_payloads_are_version_one() {
        check(Kind::Webhook, &webhook_body(), None).unwrap();
        let test = json!({"version": 1, "event": "test", "occurred_at": "2026-12-01T10:05:00Z", "message": "hi",
                          "incident": null, "job": null, "rule": null});
        check(Kind::Webhook, &test, None).unwrap();
        let mut v2 = webhook_body();
        v2["version"] = json!(2);
        assert!(refused(Kind::Webhook, v2).contains("version"));
        let mut event = webhook_body();
        event["event"] = json!("exploded");
        assert!(refused(Kind::Webhook, event).contains("event"));
        let mut id = webhook_body();
        id["incident"]["id"] = json!("nope");
        assert!(refused(Kind::Webhook, id).contains("incident.id"));
        let mut at = webhook_body();
        at["occurred_at"] = json!("yesterday");
        assert!(refused(Kind::Webhook, at).contains("occurred_at"));
        assert!(refused(Kind::Webhook, json!([1])).contains("object"));
        let group = json!({"version": 1, "event": "group", "count": 2, "occurred_at": "2026-12-01T10:05:00Z",
                           "events": [webhook_body(), webhook_body()]});
        check(Kind::Webhook, &group, None).unwrap();
        let mut miscounted = group.clone();
        miscounted["count"] = json!(3);
        assert!(refused(Kind::Webhook, miscounted).contains("count"));
        let mut bad_member = group;
        bad_member["events"][1]["job"] = json!(null);
        assert!(refused(Kind::Webhook, bad_member).starts_with("events[1]"));
    }

    #[test]
    fn slack_needs_text_or_blocks_within_limits() {
        check(
            Kind::Slack,
            &json!({"text": "hi", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]}),
            None,
        )
        .unwrap();
        assert!(refused(Kind::Slack, json!({})).starts_with("no_text"));
        assert!(refused(Kind::Slack, json!({"text": "x", "blocks": [{}]})).contains("blocks[0]"));
        assert!(refused(Kind::Slack, json!({"text": "x".repeat(40_001)})).contains("40000"));
        let long = json!({"text": "x", "blocks": [{"type": "section", "text": {"text": "y".repeat(3001)}}]});
        assert!(refused(Kind::Slack, long).contains("blocks[0].text.text"));
    }

    #[test]
    fn discord_limits_are_enforced() {
        check(Kind::Discord, &json!({"content": "hi", "embeds": [{"title": "t", "color": 255, "fields": [{"name": "a", "value": "b"}]}]}), None).unwrap();
        assert!(refused(Kind::Discord, json!({"content": ""})).contains("empty message"));
        assert!(refused(Kind::Discord, json!({"content": "x".repeat(2001)})).contains("`content`"));
        assert!(refused(Kind::Discord, json!({"embeds": vec![json!({"title": "t"}); 11]})).contains("at most 10"));
        assert!(refused(Kind::Discord, json!({"embeds": [{"title": "t".repeat(257)}]})).contains("embeds[0].title"));
        assert!(
            refused(
                Kind::Discord,
                json!({"embeds": [{"fields": [{"name": "a", "value": ""}]}]})
            )
            .contains("fields[0].value")
        );
        assert!(refused(Kind::Discord, json!({"embeds": [{"color": 0x1000000}]})).contains("color"));
        let big = json!({"embeds": [{"description": "d".repeat(4000)}, {"description": "d".repeat(2500)}]});
        assert!(refused(Kind::Discord, big).contains("6000"));
    }

    #[test]
    fn teams_needs_an_adaptive_card_envelope() {
        let good = json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "x"}],
                        "actions": [{"type": "Action.OpenUrl", "title": "v", "url": "https://x"}]}}]});
        check(Kind::Teams, &good, None).unwrap();
        let mut legacy = good.clone();
        legacy["attachments"][0]["contentType"] = json!("application/vnd.microsoft.teams.card.o365connector");
        assert!(refused(Kind::Teams, legacy).contains("contentType"));
        let mut version = good.clone();
        version["attachments"][0]["content"]["version"] = json!("2.0");
        assert!(refused(Kind::Teams, version).contains("content.version"));
        assert!(refused(Kind::Teams, json!({"type": "message", "attachments": []})).contains("attachments"));
        assert!(refused(Kind::Teams, json!({"@type": "MessageCard", "text": "x"})).contains("`type`"));
        let mut element = good;
        element["attachments"][0]["content"]["body"][0] = json!({"text": "no type"});
        assert!(refused(Kind::Teams, element).contains("content.body[0]"));
    }

    #[test]
    fn telegram_send_message_is_checked_with_its_html() {
        let good = json!({"chat_id": "-1001234567890", "text": "<b>shop &lt;eu&gt;</b> <a href=\"https://x/?a=1&amp;b=2\">view</a>", "parse_mode": "HTML"});
        check(Kind::Telegram, &good, Some(TOKEN)).unwrap();
        check(Kind::Telegram, &json!({"chat_id": 42, "text": "plain <"}), Some(TOKEN)).unwrap();
        check(
            Kind::Telegram,
            &json!({"chat_id": "@ops_channel", "text": "x"}),
            Some(TOKEN),
        )
        .unwrap();
        assert!(
            check(Kind::Telegram, &good, Some("nocolon"))
                .unwrap_err()
                .starts_with("Unauthorized")
        );
        assert!(refused(Kind::Telegram, json!({"text": "x"})).contains("chat_id"));
        assert!(refused(Kind::Telegram, json!({"chat_id": "ops", "text": "x"})).contains("chat not found"));
        assert!(refused(Kind::Telegram, json!({"chat_id": 1, "text": ""})).contains("empty"));
        for bad in [
            "shop <eu>",
            "a & b",
            "<b>open",
            "</b>",
            "<b><i>x</b></i>",
            "x > y",
            "&nbsp;",
        ] {
            let body = json!({"chat_id": 1, "text": bad, "parse_mode": "HTML"});
            assert!(refused(Kind::Telegram, body).contains("can't parse entities"), "{bad}");
        }
        // 4096 characters of text, however long the HTML.
        let long = json!({"chat_id": 1, "text": format!("<b>{}</b>", "&lt;".repeat(4096)), "parse_mode": "HTML"});
        check(Kind::Telegram, &long, Some(TOKEN)).unwrap();
        let too_long = json!({"chat_id": 1, "text": "x".repeat(4097)});
        assert!(refused(Kind::Telegram, too_long).contains("too long"));
        assert!(
            refused(
                Kind::Telegram,
                json!({"chat_id": 1, "text": "x", "parse_mode": "BBCode"})
            )
            .contains("parse_mode")
        );
    }

    #[test]
    fn pagerduty_events_are_v2_enqueue() {
        let key = "0123456789abcdef0123456789abcdef";
        let trigger = json!({"routing_key": key, "event_action": "trigger", "dedup_key": "d",
            "payload": {"summary": "down", "source": "shop", "severity": "critical", "timestamp": "2026-12-01T10:05:00.000Z"},
            "links": [{"href": "https://x", "text": "view"}]});
        check(Kind::PagerDuty, &trigger, None).unwrap();
        check(
            Kind::PagerDuty,
            &json!({"routing_key": key, "event_action": "resolve", "dedup_key": "d"}),
            None,
        )
        .unwrap();
        let mut short = trigger.clone();
        short["routing_key"] = json!("abc");
        assert!(refused(Kind::PagerDuty, short).contains("32"));
        let mut action = trigger.clone();
        action["event_action"] = json!("open");
        assert!(refused(Kind::PagerDuty, action).contains("event_action"));
        assert!(
            refused(
                Kind::PagerDuty,
                json!({"routing_key": key, "event_action": "acknowledge"})
            )
            .contains("dedup_key")
        );
        let mut severity = trigger.clone();
        severity["payload"]["severity"] = json!("high");
        assert!(refused(Kind::PagerDuty, severity).contains("severity"));
        let mut summary = trigger.clone();
        summary["payload"]["summary"] = json!("s".repeat(1025));
        assert!(refused(Kind::PagerDuty, summary).contains("summary"));
        let mut payload = trigger;
        payload.as_object_mut().unwrap().remove("payload");
        assert!(refused(Kind::PagerDuty, payload).contains("payload"));
    }
}
