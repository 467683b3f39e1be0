//! Microsoft Teams through a Workflows webhook ("When a Teams webhook
//! request is received"): a message envelope with one Adaptive Card 1.4
//! attachment (<https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-reference#adaptive-card>),
//! which the workflow posts to the channel. The retired Office 365
//! connector cards (MessageCard) are not sent.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{listed, truncate};
use crate::payload::{IncidentNotice, first_failure_words, group_summary, time};

/// The attachment's content type, as Teams requires it.
pub const ADAPTIVE_CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// The card schema version sent (Teams renders up to 1.5).
pub const CARD_VERSION: &str = "1.4";
/// A card's text budget: Teams refuses messages over about 28 KB.
const TEXT_BUDGET: usize = 20_000;

/// The body for `notices` (one: the incident with its facts; several: a list).
pub fn body(notices: &[IncidentNotice]) -> Value {
    match notices {
        [one] => {
            let mut facts = vec![
                fact("Severity", &one.severity),
                fact("Job", &one.job_name),
                fact("Rule", &one.rule_name),
                fact("Opened", &time(one.opened_at)),
            ];
            if !one.failing_locations.is_empty() {
                facts.push(fact("Failing locations", &one.failing_locations.join(", ")));
            }
            if let Some(failure) = one.first_failure.as_ref().and_then(first_failure_words) {
                facts.push(fact("First failure", &failure));
            }
            let body = vec![
                json!({ "type": "TextBlock", "text": truncate(&one.headline(), 500), "weight": "Bolder", "size": "Medium", "wrap": true, "color": color(one) }),
                json!({ "type": "FactSet", "facts": facts }),
            ];
            card(body, one.dashboard_url.as_deref())
        }
        many => {
            let mut body = vec![
                json!({ "type": "TextBlock", "text": group_summary(many), "weight": "Bolder", "size": "Medium", "wrap": true }),
            ];
            let lines = listed(many, TEXT_BUDGET, |notice| {
                let mut line = format!(
                    "**[{}]** {}",
                    notice.severity.to_uppercase(),
                    truncate(&notice.headline(), 300)
                );
                if let Some(url) = &notice.dashboard_url {
                    line.push_str(&format!(" ([view]({url}))"));
                }
                line
            });
            body.extend(
                lines
                    .into_iter()
                    .map(|line| json!({ "type": "TextBlock", "text": line, "wrap": true, "spacing": "Small" })),
            );
            card(body, None)
        }
    }
}

fn fact(title: &str, value: &str) -> Value {
    json!({ "title": title, "value": if value.is_empty() { "—".to_owned() } else { truncate(value, 500) } })
}

fn color(notice: &IncidentNotice) -> &'static str {
    match notice.event.as_str() {
        "resolved" | "flapping_ended" => "Good",
        "acknowledged" => "Accent",
        _ if notice.severity == "critical" => "Attention",
        _ => "Warning",
    }
}

/// The envelope around one card with `body`, and a button to `link`.
fn card(body: Vec<Value>, link: Option<&str>) -> Value {
    let mut content = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": { "width": "Full" },
    });
    if let Some(url) = link {
        content["actions"] = json!([{ "type": "Action.OpenUrl", "title": "View incident", "url": url }]);
    }
    json!({
        "type": "message",
        "attachments": [{ "contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": null, "content": content }],
    })
}

/// The test message.
pub fn test_body(text: &str, at: DateTime<Utc>) -> Value {
    card(
        vec![
            json!({ "type": "TextBlock", "text": "Test notification", "weight": "Bolder", "size": "Medium", "wrap": true }),
            json!({ "type": "TextBlock", "text": text, "wrap": true }),
            json!({ "type": "TextBlock", "text": time(at), "isSubtle": true, "spacing": "Small" }),
        ],
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::fixtures::{many, notice};

    #[test]
    fn one_notice_is_an_adaptive_card_in_a_message() {
        let body = body(&[notice("opened")]);
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(attachment["contentType"], ADAPTIVE_CARD_CONTENT_TYPE);
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["body"][0]["text"], "shop <eu> & *co* is down (eu-1)");
        assert_eq!(card["body"][0]["color"], "Attention");
        assert_eq!(card["body"][1]["facts"][1]["value"], "shop <eu> & *co*");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        let mut resolved = notice("resolved");
        resolved.resolved_at = Some(resolved.occurred_at);
        assert_eq!(
            super::body(&[resolved])["attachments"][0]["content"]["body"][0]["color"],
            "Good"
        );
    }

    #[test]
    fn many_notices_list_twenty_and_count_the_rest() {
        let body = body(&many(500));
        let blocks = body["attachments"][0]["content"]["body"].as_array().unwrap();
        assert_eq!(blocks[0]["text"], "500 incident events: 500 opened");
        assert_eq!(blocks.len(), 1 + 20 + 1);
        assert_eq!(blocks.last().unwrap()["text"], "… and 480 more");
        assert!(serde_json::to_vec(&body).unwrap().len() < 28_000);
    }
}
