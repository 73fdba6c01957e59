//! 公开答复: what of a reply the public reads, with the personal data of individuals removed.
//!
//! A reply is published (after the profile's `deadlines.publication`, or earlier by the
//! assigning office) when its item is not confidential and its disclosure allows it: `full`
//! publishes the reply's text, `summary` only its record (unit, class, number, dates) — the text
//! is withheld. Names of the people involved (deputies, signers, handlers, leaders) become
//! `×××`; phone numbers, e-mail addresses and resident identity numbers are replaced by a
//! marker saying what was removed.

/// What replaces a person's name.
pub const NAME_MARK: &str = "×××";
/// What replaces a phone number.
pub const PHONE_MARK: &str = "[电话]";
/// What replaces an e-mail address.
pub const EMAIL_MARK: &str = "[邮箱]";
/// What replaces a resident identity number.
pub const ID_MARK: &str = "[身份证号]";

/// `text` with the personal data of individuals removed — each of `names` (of two characters or
/// more), phone numbers (mainland mobile and landline), e-mail addresses and resident identity
/// numbers — and how many were removed.
pub fn redact(text: &str, names: &[String]) -> (String, u32) {
    let mut count = 0;
    let mut names: Vec<&str> = names
        .iter()
        .map(|n| n.trim())
        .filter(|n| n.chars().count() >= 2)
        .collect();
    // Longest first, so that a full name goes before a name it contains.
    names.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    names.dedup();
    let mut out = text.to_owned();
    for n in names {
        let found = out.matches(n).count();
        if found > 0 {
            count += found as u32;
            out = out.replace(n, NAME_MARK);
        }
    }
    let (out, emails) = emails(&out);
    let (out, numbers) = numbers(&out);
    (out, count + emails + numbers)
}

fn email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

/// E-mail addresses: `local@domain.tld`.
fn emails(text: &str) -> (String, u32) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > copied && email_local(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && email_domain(chars[end]) {
                end += 1;
            }
            // Trailing dots end a sentence, not the domain.
            while end > i + 1 && chars[end - 1] == '.' {
                end -= 1;
            }
            let domain: String = chars[i + 1..end].iter().collect();
            let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
                !host.is_empty() && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
            });
            if start < i && tld_ok {
                out.extend(&chars[copied..start]);
                out.push_str(EMAIL_MARK);
                count += 1;
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.extend(&chars[copied.min(chars.len())..]);
    (out, count)
}

/// Phone numbers and resident identity numbers: runs of digits (with `-` or spaces between
/// groups of a phone number) standing on their own.
fn numbers(text: &str) -> (String, u32) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts = c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric());
        if !starts {
            out.push(c);
            i += 1;
            continue;
        }
        // The run: digits, single separators between digits.
        let mut j = i;
        let mut digits = String::new();
        let mut separated = false;
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                digits.push(chars[j]);
                j += 1;
            } else if (chars[j] == '-' || chars[j] == ' ')
                && j + 1 < chars.len()
                && chars[j + 1].is_ascii_digit()
                && j > i
            {
                separated = true;
                j += 1;
            } else {
                break;
            }
        }
        let mut end = j;
        let mut id_check = false;
        if !separated && digits.len() == 17 && end < chars.len() && matches!(chars[end], 'X' | 'x')
        {
            end += 1;
            id_check = true;
        }
        let bounded = end == chars.len() || !chars[end].is_ascii_alphanumeric();
        let mark = if !bounded {
            None
        } else if !separated && (digits.len() == 18 || digits.len() == 15 || id_check) {
            Some(ID_MARK)
        } else if is_mobile(&digits) || is_landline(&digits) {
            Some(PHONE_MARK)
        } else {
            None
        };
        match mark {
            Some(m) => {
                out.push_str(m);
                count += 1;
            }
            None => out.extend(&chars[i..end]),
        }
        i = end;
    }
    (out, count)
}

/// A mainland mobile number: 11 digits, `1` then `3`–`9`.
fn is_mobile(digits: &str) -> bool {
    let b = digits.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

/// A landline number with its area code: `0` then 9 to 11 digits.
fn is_landline(digits: &str) -> bool {
    digits.starts_with('0') && (10..=12).contains(&digits.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str, names: &[&str]) -> (String, u32) {
        redact(
            text,
            &names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn personal_data_is_removed_and_counted() {
        let (out, n) = r(
            "经与王小明代表（电话13812345678，邮箱wang.xm@example.com.cn）沟通，王小明同意；联系人李四，0731-88880000，身份证号43010219800101123X。",
            &["王小明", "李四", "王"],
        );
        assert_eq!(
            out,
            "经与×××代表（电话[电话]，邮箱[邮箱]）沟通，×××同意；联系人×××，[电话]，身份证号[身份证号]。"
        );
        // Two of the name, one other name, a mobile, an e-mail, a landline, an identity number.
        assert_eq!(n, 7);
    }

    #[test]
    fn figures_dates_and_document_numbers_stay() {
        let text = "2021年安排资金3000万元，惠及12345678户，文号湘政〔2020〕100号，2020-05-12办结，合同号A13812345678。";
        let (out, n) = r(text, &[]);
        assert_eq!(out, text);
        assert_eq!(n, 0);
    }

    #[test]
    fn separated_phone_numbers_and_edge_positions() {
        let (out, n) = r("138-1234-5678 或 138 1234 5678；末尾13912345678", &[]);
        assert_eq!(out, "[电话] 或 [电话]；末尾[电话]");
        assert_eq!(n, 3);
        let (out, _) = r("a@b 不是邮箱，x@y.z 也不是；请致函 office@rd.gov.cn.", &[]);
        assert_eq!(out, "a@b 不是邮箱，x@y.z 也不是；请致函 [邮箱].");
    }
}
