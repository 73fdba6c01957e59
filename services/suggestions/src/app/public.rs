//! 公开答复: the public pages — published replies (redacted) for anyone, without a key: a paged
//! list, one reply, its printable document, an Atom feed.

use super::*;
use crate::store::PublicReplyRow;

/// The most replies one public page holds.
pub const MAX_PUBLIC_PAGE: u32 = 100;

/// A published reply as the public reads it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PublicReplyView {
    pub id: Uuid,
    pub suggestion_id: Uuid,
    /// The suggestion's number in its session, e.g. `2020-0123`.
    pub number: String,
    /// The suggestion's title, the personal data of individuals removed.
    pub title: String,
    pub agency_id: Uuid,
    pub agency: Option<String>,
    /// `A`, `B`, `C` (or `D`): the class the unit gave the reply.
    pub class: String,
    /// `initial`, `re_handled` or `joint`.
    pub reply_type: String,
    pub document_number: String,
    pub replied_on: Date,
    pub published_on: Date,
    /// The reply's text, the personal data of individuals removed; absent where the item's
    /// disclosure is `summary` (the record only).
    pub body: Option<String>,
    /// `full` or `summary`.
    pub disclosure: String,
    /// The printable published document.
    pub href: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PublicReplyPage {
    pub items: Vec<PublicReplyView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

fn view(r: PublicReplyRow) -> Result<PublicReplyView, AppError> {
    let uuid = |s: &str| {
        Uuid::try_parse(s)
            .map_err(|_| AppError::internal(&format!("bad id `{s}` in reply_publications")))
    };
    Ok(PublicReplyView {
        id: uuid(&r.reply_id)?,
        suggestion_id: uuid(&r.suggestion_id)?,
        href: format!("/v1/public/replies/{}/document", r.reply_id),
        number: r.number,
        title: r.title,
        agency_id: uuid(&r.agency_id)?,
        agency: r.agency_name,
        class: r.class,
        reply_type: r.reply_type,
        document_number: r.document_number,
        replied_on: r.replied_on,
        published_on: r.published_on,
        body: r.body,
        disclosure: r.disclosure,
    })
}

fn page_token(v: &PublicReplyView) -> String {
    format!(
        "r1.{}.{}",
        crate::dto::date_text(v.published_on),
        v.id.simple()
    )
}

fn parse_page_token(t: &str) -> Result<(Date, String), AppError> {
    let bad = || {
        AppError::malformed(
            "page_token is not a token this API issued; pass next_page_token back unchanged",
        )
    };
    let rest = t.strip_prefix("r1.").ok_or_else(bad)?;
    let (d, id) = rest.split_once('.').ok_or_else(bad)?;
    let d = banli_calendar::parse_date(d).map_err(|_| bad())?;
    let id = Uuid::try_parse(id).map_err(|_| bad())?;
    Ok((d, id.to_string()))
}

impl App {
    /// Published replies, newest first; of one agency when `agency` is given.
    pub async fn public_replies(
        &self,
        page_token: Option<&str>,
        agency: Option<Uuid>,
        page_size: Option<u32>,
    ) -> Result<PublicReplyPage, AppError> {
        let limit = page_size.unwrap_or(20);
        if !(1..=MAX_PUBLIC_PAGE).contains(&limit) {
            return Err(AppError::malformed(format!(
                "page_size must be between 1 and {MAX_PUBLIC_PAGE}"
            )));
        }
        let after = page_token.map(parse_page_token).transpose()?;
        let mut rows = self
            .store()
            .public_replies(after, agency.map(AgencyId), limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let items = rows.into_iter().map(view).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = if more {
            items.last().map(self::page_token)
        } else {
            None
        };
        Ok(PublicReplyPage {
            items,
            next_page_token,
        })
    }

    /// One published reply; 404 for an unknown, unpublished or withdrawn one.
    pub async fn public_reply(&self, id: Uuid) -> Result<PublicReplyView, AppError> {
        match self.store().public_reply(&id.to_string()).await? {
            Some(r) => view(r),
            None => Err(AppError::not_found(format!(
                "no published reply {id} (it may not be published yet, or was withdrawn)"
            ))),
        }
    }

    /// The published replies as an Atom feed (RFC 4287), the newest 50.
    pub async fn public_feed(&self) -> Result<String, AppError> {
        let page = self.public_replies(None, None, Some(50)).await?;
        Ok(atom(&page.items))
    }
}

/// Text for XML and HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn atom(items: &[PublicReplyView]) -> String {
    let updated = items
        .first()
        .map(|i| i.published_on)
        .unwrap_or(Date::MIN.max(time::macros::date!(2000 - 01 - 01)));
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n",
    );
    out.push_str("  <title>建议办理答复公开</title>\n  <id>urn:banli:public-replies</id>\n");
    out.push_str("  <link rel=\"self\" href=\"/v1/public/feed.atom\"/>\n");
    out.push_str(&format!(
        "  <updated>{}T00:00:00Z</updated>\n  <author><name>banli</name></author>\n",
        crate::dto::date_text(updated)
    ));
    for i in items {
        let title = format!("{} {}", i.number, i.title);
        let content = i
            .body
            .clone()
            .unwrap_or_else(|| "（摘要公开：答复正文不公开）".to_owned());
        out.push_str(&format!(
            "  <entry>\n    <id>urn:uuid:{}</id>\n    <title>{}</title>\n    <updated>{}T00:00:00Z</updated>\n    <link href=\"{}\"/>\n    <author><name>{}</name></author>\n    <summary>{} {}类答复（{}）</summary>\n    <content type=\"text\">{}</content>\n  </entry>\n",
            i.id,
            escape(&title),
            crate::dto::date_text(i.published_on),
            escape(&i.href),
            escape(i.agency.as_deref().unwrap_or("")),
            escape(&i.document_number),
            escape(&i.class),
            crate::dto::date_text(i.replied_on),
            escape(&content),
        ));
    }
    out.push_str("</feed>\n");
    out
}

/// The printable published document of a reply: one self-contained HTML page.
pub fn document_html(i: &PublicReplyView) -> String {
    let body = match &i.body {
        Some(b) => b
            .split('\n')
            .map(|p| format!("<p>{}</p>", escape(p)))
            .collect::<Vec<_>>()
            .join("\n"),
        None => "<p class=\"note\">本件按摘要公开，答复正文不予公开。</p>".to_owned(),
    };
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n<style>body{{font-family:serif;max-width:42em;margin:2em auto;padding:0 1em;line-height:1.8}}h1{{font-size:1.4em;text-align:center}}.meta{{color:#444;text-align:center}}.note{{color:#666}}</style></head>\n<body>\n<h1>{title}</h1>\n<p class=\"meta\">{number} · {agency} · {document_number} · {class}类 · 答复日期 {replied_on} · 公开日期 {published_on}</p>\n{body}\n<p class=\"note\">公开文本已删除个人姓名、电话、电子邮箱和身份证号等个人信息。</p>\n</body>\n</html>\n",
        title = escape(&i.title),
        number = escape(&i.number),
        agency = escape(i.agency.as_deref().unwrap_or("")),
        document_number = escape(&i.document_number),
        class = escape(&i.class),
        replied_on = crate::dto::date_text(i.replied_on),
        published_on = crate::dto::date_text(i.published_on),
        body = body,
    )
}
