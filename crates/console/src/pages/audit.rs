//! Inspectors (the auditor role): the audit log's latest signed checkpoint, and one entry
//! looked up by its index, decoded.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use crate::Console;
use crate::page::{respond, shell};
use crate::session::Viewer;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    index: Option<String>,
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes().filter(|b| *b != b'=') {
        let v = ALPHABET.iter().position(|c| *c == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

pub async fn audit(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<AuditQuery>,
) -> Response {
    let lang = viewer.lang;
    let checkpoint = c.get(&viewer, "/v1/audit/checkpoint", None).await;
    let size = checkpoint
        .as_ref()
        .ok()
        .and_then(|v| v.as_str())
        .and_then(|t| t.lines().nth(1))
        .and_then(|l| l.parse::<u64>().ok());
    let index = q.index.as_deref().filter(|s| !s.is_empty());
    let entry = match index {
        None => None,
        Some(i) => Some(match i.parse::<u64>() {
            Err(_) => Err(lang
                .t("序号须为非负整数。", "The index is a whole number from 0.")
                .to_owned()),
            Ok(n) => match c
                .get(
                    &viewer,
                    &format!("/v1/audit/entries?start={n}&end={n}"),
                    None,
                )
                .await
            {
                Err(r) => Err(r.detail),
                Ok(v) => v["entries"]
                    .as_array()
                    .and_then(|l| l.first())
                    .and_then(|e| e["leaf_input"].as_str())
                    .and_then(decode_base64)
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .map(|j| serde_json::to_string_pretty(&j).unwrap_or_default())
                    .ok_or_else(|| {
                        lang.t(
                            "没有该序号的条目（超出已签名的日志长度）。",
                            "No entry has this index (past the signed log).",
                        )
                        .to_owned()
                    }),
            },
        }),
    };
    let body = html! {
        h2 { (lang.t("最新签名检查点", "Latest signed checkpoint")) }
        @match &checkpoint {
            Ok(v) => {
                pre.checkpoint { (v.as_str().unwrap_or("")) }
                @if let Some(s) = size { p { (lang.t("日志条目数：", "Entries in the log: ")) strong #size { (s) } } }
            }
            Err(r) => p.problem { (r.detail) }
        }
        h2 { (lang.t("查看条目", "Look up an entry")) }
        form.filters method="get" action="/console/audit" {
            label for="index" { (lang.t("序号（从0开始）", "Index (from 0)")) }
            input #index name="index" type="number" min="0" value=(index.unwrap_or(""));
            button type="submit" { (lang.t("查看", "Show")) }
        }
        @match &entry {
            Some(Ok(text)) => pre.entry { (text) },
            Some(Err(e)) => p.problem role="alert" { (e) },
            None => {},
        }
        @if let (Some(Ok(_)), Some(i)) = (&entry, index) {
            p { a #proof href=(format!("/console/audit/proof?index={i}")) download { (lang.t("下载该条目的证明", "Download this entry's proof")) } }
        }
        h2 { (lang.t("独立验证", "Verify it yourself")) }
        p { (lang.t("证明文件包含检查点、该检查点大小下的包含证明和条目原文。只需日志的公钥即可离线验证：", "The proof holds the checkpoint, the inclusion proof at its size and the entry's bytes. Only the log's public key is needed to check it offline:")) }
        pre { "curl -o audit.pub http://<banli>/v1/audit/public-key\nbanli audit verify-proof --public-key audit.pub --bundle banli-proof-N.json" }
    };
    respond(
        StatusCode::OK,
        shell(lang, Some(&viewer), lang.t("审计日志", "Audit log"), body),
    )
}

/// One entry's proof bundle, for `banli audit verify-proof --bundle`: the latest checkpoint, the
/// inclusion proof at its size, the entry's bytes.
pub async fn proof(
    State(c): State<Console>,
    viewer: Viewer,
    Query(q): Query<AuditQuery>,
) -> Response {
    let lang = viewer.lang;
    let Some(index) = q.index.as_deref().and_then(|i| i.parse::<u64>().ok()) else {
        return crate::page::not_found(lang, Some(&viewer));
    };
    let checkpoint = match c.get(&viewer, "/v1/audit/checkpoint", None).await {
        Ok(v) => v.as_str().unwrap_or_default().to_owned(),
        Err(r) => return crate::page::refused(lang, &viewer, &r),
    };
    let Some(size) = checkpoint
        .lines()
        .nth(1)
        .and_then(|l| l.parse::<u64>().ok())
    else {
        return crate::page::unavailable(lang);
    };
    let inclusion = match c
        .get(
            &viewer,
            &format!("/v1/audit/proofs/inclusion?index={index}&tree_size={size}"),
            None,
        )
        .await
    {
        Ok(v) => v,
        Err(r) => return crate::page::refused(lang, &viewer, &r),
    };
    let leaf = match c
        .get(
            &viewer,
            &format!("/v1/audit/entries?start={index}&end={index}"),
            None,
        )
        .await
    {
        Ok(v) => v["entries"][0]["leaf_input"].clone(),
        Err(r) => return crate::page::refused(lang, &viewer, &r),
    };
    let bundle = serde_json::json!({"index": index, "tree_size": size, "checkpoint": checkpoint, "inclusion": inclusion, "leaf_input": leaf});
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/json".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"banli-proof-{index}.json\""),
            ),
        ],
        serde_json::to_string_pretty(&bundle).unwrap_or_default(),
    )
        .into_response()
}
