//! A file's type told by its content: the signature at its start and, for the ZIP containers
//! (OFD, DOCX), the names of the entries its first local headers carry.

/// How many bytes [`sniff`] needs at most to decide (fewer when the file is shorter).
pub const SNIFF_BYTES: usize = 64 * 1024;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Pdf,
    /// 版式文档 (GB/T 33190), the Chinese fixed-layout format of official documents.
    Ofd,
    Docx,
    Png,
    Jpeg,
    Tiff,
    Gif,
    /// Anything else, named for what it looks like (`application/x-msdownload` for a Windows
    /// executable, `application/zip` for another archive, …): never an allowed document.
    Other(&'static str),
}

impl MediaType {
    /// The media type's name (`application/pdf`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::Ofd => "application/ofd",
            MediaType::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Tiff => "image/tiff",
            MediaType::Gif => "image/gif",
            MediaType::Other(name) => name,
        }
    }

    /// The type from its name, as stored (`None` for a type never stored).
    pub fn parse(s: &str) -> Option<MediaType> {
        [
            MediaType::Pdf,
            MediaType::Ofd,
            MediaType::Docx,
            MediaType::Png,
            MediaType::Jpeg,
            MediaType::Tiff,
            MediaType::Gif,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// A document the platform keeps: PDF, OFD, DOCX or an image.
    pub fn allowed(self) -> bool {
        !matches!(self, MediaType::Other(_))
    }

    /// The usual file extension, for a download's name.
    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Pdf => "pdf",
            MediaType::Ofd => "ofd",
            MediaType::Docx => "docx",
            MediaType::Png => "png",
            MediaType::Jpeg => "jpg",
            MediaType::Tiff => "tif",
            MediaType::Gif => "gif",
            MediaType::Other(_) => "bin",
        }
    }
}

/// What `head` (a file's first bytes, up to [`SNIFF_BYTES`]) is.
pub fn sniff(head: &[u8]) -> MediaType {
    let starts = |sig: &[u8]| head.starts_with(sig);
    // A PDF's header may follow a little garbage (the specification allows it within the
    // first 1,024 bytes).
    let window = &head[..head.len().min(1024)];
    if window.windows(5).any(|w| w == b"%PDF-") {
        return MediaType::Pdf;
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return MediaType::Png;
    }
    if starts(b"\xFF\xD8\xFF") {
        return MediaType::Jpeg;
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return MediaType::Tiff;
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return MediaType::Gif;
    }
    if starts(b"PK\x03\x04") {
        let names = zip_names(head);
        if names.iter().any(|n| n.eq_ignore_ascii_case("OFD.xml")) {
            return MediaType::Ofd;
        }
        if names.iter().any(|n| n == "[Content_Types].xml")
            && names.iter().any(|n| n.starts_with("word/"))
        {
            return MediaType::Docx;
        }
        return MediaType::Other("application/zip");
    }
    if starts(b"MZ") {
        return MediaType::Other("application/x-msdownload");
    }
    if starts(b"\x7FELF") {
        return MediaType::Other("application/x-elf");
    }
    if starts(b"\xCF\xFA\xED\xFE") || starts(b"\xCE\xFA\xED\xFE") || starts(b"\xCA\xFE\xBA\xBE") {
        return MediaType::Other("application/x-mach-binary");
    }
    if starts(b"#!") {
        return MediaType::Other("text/x-shellscript");
    }
    if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        // The old binary Word (.doc) and other OLE files: not a format the platform keeps.
        return MediaType::Other("application/x-ole-storage");
    }
    if !head.is_empty() && std::str::from_utf8(head).is_ok() {
        return MediaType::Other("text/plain");
    }
    MediaType::Other("application/octet-stream")
}

/// The entry names of the ZIP local file headers found one after another from the start of
/// `head` (as far as `head` reaches).
fn zip_names(head: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0usize;
    let u16_at = |i: usize| -> Option<usize> {
        Some(u16::from_le_bytes([*head.get(i)?, *head.get(i + 1)?]) as usize)
    };
    let u32_at = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes([
            *head.get(i)?,
            *head.get(i + 1)?,
            *head.get(i + 2)?,
            *head.get(i + 3)?,
        ]) as usize)
    };
    while names.len() < 64 && head.get(at..at + 4) == Some(b"PK\x03\x04") {
        let (Some(flags), Some(compressed), Some(name_len), Some(extra_len)) = (
            u16_at(at + 6),
            u32_at(at + 18),
            u16_at(at + 26),
            u16_at(at + 28),
        ) else {
            break;
        };
        let Some(name) = head.get(at + 30..at + 30 + name_len) else {
            break;
        };
        names.push(String::from_utf8_lossy(name).into_owned());
        // With a data descriptor (flag bit 3) the sizes follow the data: the next header
        // cannot be found without inflating; the names so far decide.
        if flags & 0x08 != 0 {
            break;
        }
        at = at
            .saturating_add(30 + name_len + extra_len)
            .saturating_add(compressed);
    }
    names
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ZIP of stored (uncompressed) entries, as far as the sniffer reads one.
    pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in entries {
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&20u16.to_le_bytes()); // version needed
            out.extend_from_slice(&0u16.to_le_bytes()); // flags
            out.extend_from_slice(&0u16.to_le_bytes()); // stored
            out.extend_from_slice(&[0; 4]); // time, date
            out.extend_from_slice(&[0; 4]); // CRC-32 (not read)
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 18]);
        out
    }

    #[test]
    fn documents_are_told_by_their_content() {
        assert_eq!(
            sniff(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj"),
            MediaType::Pdf
        );
        assert_eq!(sniff(b"\n\n%PDF-1.4\n"), MediaType::Pdf);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), MediaType::Png);
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), MediaType::Jpeg);
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), MediaType::Tiff);
        assert_eq!(sniff(b"GIF89a\x01\0"), MediaType::Gif);
        let docx = zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("_rels/.rels", b"<Relationships/>"),
            ("word/document.xml", b"<w:document/>"),
        ]);
        assert_eq!(sniff(&docx), MediaType::Docx);
        let ofd = zip(&[("OFD.xml", b"<ofd:OFD/>"), ("Doc_0/Document.xml", b"<x/>")]);
        assert_eq!(sniff(&ofd), MediaType::Ofd);
        for m in [
            MediaType::Pdf,
            MediaType::Ofd,
            MediaType::Docx,
            MediaType::Png,
        ] {
            assert!(m.allowed());
            assert_eq!(MediaType::parse(m.as_str()), Some(m));
        }
    }

    #[test]
    fn anything_else_is_named_for_what_it_is_and_refused() {
        let xlsx = zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("xl/workbook.xml", b"<x/>"),
        ]);
        for (head, name) in [
            (&b"MZ\x90\0\x03\0\0\0"[..], "application/x-msdownload"),
            (&b"\x7FELF\x02\x01\x01"[..], "application/x-elf"),
            (&b"#!/bin/sh\nrm -rf /\n"[..], "text/x-shellscript"),
            (&xlsx[..], "application/zip"),
            (
                &b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"[..],
                "application/x-ole-storage",
            ),
            (&b"just some text"[..], "text/plain"),
            (&b"\0\x01\x02\xFE"[..], "application/octet-stream"),
            (&b""[..], "application/octet-stream"),
        ] {
            let m = sniff(head);
            assert_eq!(m.as_str(), name);
            assert!(!m.allowed(), "{name}");
            assert_eq!(MediaType::parse(name), None);
        }
        // A truncated or lying local header ends the walk without a panic.
        assert_eq!(sniff(b"PK\x03\x04\x14\0").as_str(), "application/zip");
        let mut lying = zip(&[("word/document.xml", b"x")]);
        lying[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(sniff(&lying).as_str(), "application/zip");
    }
}
