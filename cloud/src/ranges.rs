//! Planning of coalesced range requests.
//!
//! Requested byte ranges are sorted, neighbours whose gap is at most `max_gap` are merged, and
//! no merged request grows beyond `max_request` bytes (a single range larger than that is split
//! into pieces). Each original range is then cut back out of the merged responses.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// One request of a coalesced plan and the pieces of original ranges it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedRequest {
    /// Bytes to fetch.
    pub range: Range<u64>,
    /// `(original index, byte range inside this request)` for every piece it serves.
    pub serves: Vec<(usize, Range<usize>)>,
}

/// Plans the requests that fetch `ranges` (empty ranges need none).
pub fn plan(ranges: &[Range<u64>], max_gap: u64, max_request: u64) -> Vec<MergedRequest> {
    let max_request = max_request.max(1);
    // Split oversized ranges into pieces no larger than max_request.
    let mut pieces: Vec<(usize, Range<u64>)> = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        let mut start = r.start;
        while start < r.end {
            let end = r.end.min(start.saturating_add(max_request));
            pieces.push((i, start..end));
            start = end;
        }
    }
    pieces.sort_by_key(|(i, r)| (r.start, r.end, *i));

    let mut plan: Vec<MergedRequest> = Vec::new();
    let mut members: Vec<(usize, Range<u64>)> = Vec::new();
    let mut current: Option<Range<u64>> = None;
    let flush = |current: &mut Option<Range<u64>>,
                 members: &mut Vec<(usize, Range<u64>)>,
                 plan: &mut Vec<MergedRequest>| {
        if let Some(range) = current.take() {
            let serves = members
                .drain(..)
                .map(|(i, r)| {
                    let lo = (r.start - range.start) as usize;
                    let hi = (r.end - range.start) as usize;
                    (i, lo..hi)
                })
                .collect();
            plan.push(MergedRequest { range, serves });
        }
    };
    for (i, r) in pieces {
        match &mut current {
            Some(cur)
                if r.start <= cur.end.saturating_add(max_gap)
                    && r.end.max(cur.end) - cur.start <= max_request =>
            {
                cur.end = cur.end.max(r.end);
                members.push((i, r));
            }
            _ => {
                flush(&mut current, &mut members, &mut plan);
                current = Some(r.clone());
                members.push((i, r));
            }
        }
    }
    flush(&mut current, &mut members, &mut plan);
    plan
}

/// Reassembles the original ranges from the responses to `plan` (in plan order).
///
/// A range served by one request is a zero-copy slice of it; a split range is concatenated.
pub fn assemble(ranges: &[Range<u64>], plan: &[MergedRequest], responses: &[Bytes]) -> Vec<Bytes> {
    let mut pieces: Vec<Vec<(u64, Bytes)>> = vec![Vec::new(); ranges.len()];
    for (request, body) in plan.iter().zip(responses) {
        for (i, within) in &request.serves {
            let absolute = request.range.start + within.start as u64;
            pieces[*i].push((absolute, body.slice(within.clone())));
        }
    }
    pieces
        .into_iter()
        .map(|mut parts| match parts.len() {
            0 => Bytes::new(),
            1 => parts.pop().map(|(_, b)| b).unwrap_or_default(),
            _ => {
                parts.sort_by_key(|(start, _)| *start);
                let mut out = BytesMut::with_capacity(parts.iter().map(|(_, b)| b.len()).sum());
                for (_, b) in parts {
                    out.extend_from_slice(&b);
                }
                out.freeze()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(data: &[u8], plan: &[MergedRequest]) -> Vec<Bytes> {
        plan.iter()
            .map(|m| Bytes::copy_from_slice(&data[m.range.start as usize..m.range.end as usize]))
            .collect()
    }

    #[test]
    fn merges_small_gaps_and_keeps_order() {
        let ranges = vec![100..200, 0..10, 210..300, 5000..5100, 20..30];
        let p = plan(&ranges, 64, 1 << 20);
        let got: Vec<_> = p.iter().map(|m| m.range.clone()).collect();
        assert_eq!(got, vec![0..30, 100..300, 5000..5100]);

        let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        let out = assemble(&ranges, &p, &fetch(&data, &p));
        for (r, b) in ranges.iter().zip(&out) {
            assert_eq!(&b[..], &data[r.start as usize..r.end as usize]);
        }
    }

    #[test]
    fn caps_merged_requests_and_splits_big_ranges() {
        let ranges = vec![0..100, 100..200, 200..300, 300..1000];
        let p = plan(&ranges, 0, 250);
        for m in &p {
            assert!(m.range.end - m.range.start <= 250, "{:?}", m.range);
        }
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        let out = assemble(&ranges, &p, &fetch(&data, &p));
        for (r, b) in ranges.iter().zip(&out) {
            assert_eq!(&b[..], &data[r.start as usize..r.end as usize]);
        }
    }

    #[test]
    fn overlapping_and_duplicate_ranges() {
        let ranges = vec![10..50, 10..50, 30..70, 0..0];
        let p = plan(&ranges, 0, 1000);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].range, 10..70);
        let data: Vec<u8> = (0..100u8).collect();
        let out = assemble(&ranges, &p, &fetch(&data, &p));
        assert_eq!(&out[0][..], &data[10..50]);
        assert_eq!(&out[1][..], &data[10..50]);
        assert_eq!(&out[2][..], &data[30..70]);
        assert!(out[3].is_empty());
    }
}
