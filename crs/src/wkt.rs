//! Reading WKT (OGC 01-009 WKT1, ISO 19162 WKT2) as far as geobutton needs: the root's
//! keyword, its direct elements and their `AUTHORITY`/`ID`. Quoted names may hold brackets
//! and commas (`""` is a quote inside a name); `[]` and `()` both delimit.

/// One element directly inside a WKT's root: `KEYWORD[inner]`.
struct Element<'a> {
    /// The keyword, as written (WKT keywords are case-insensitive).
    keyword: &'a str,
    /// The whole element, keyword to closing bracket.
    text: &'a str,
    /// What is between its brackets.
    inner: &'a str,
}

/// The root's keyword and the elements directly inside the root of `wkt`, in order.
fn root(wkt: &str) -> (&str, Vec<Element<'_>>) {
    let wkt = wkt.trim_start();
    let b = wkt.as_bytes();
    let (mut depth, mut quoted, mut token) = (0usize, false, 0usize);
    let mut root_keyword = "";
    // (keyword start, opening bracket) of the element being read at depth 1.
    let mut open: Option<(usize, usize)> = None;
    let mut elements = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        if quoted {
            // `""` inside a name closes and reopens: the name goes on.
            quoted = c != b'"';
            continue;
        }
        match c {
            b'"' => quoted = true,
            b'[' | b'(' => {
                match depth {
                    0 => root_keyword = wkt[..i].trim(),
                    1 => open = Some((token, i)),
                    _ => {}
                }
                depth += 1;
                token = i + 1;
            }
            b']' | b')' => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some((start, bracket)) = open.take()
                {
                    elements.push(Element {
                        keyword: wkt[start..bracket].trim(),
                        text: wkt[start..=i].trim_start(),
                        inner: &wkt[bracket + 1..i],
                    });
                }
                if depth == 0 {
                    break;
                }
                token = i + 1;
            }
            b',' => token = i + 1,
            _ => {}
        }
    }
    (root_keyword, elements)
}

/// The EPSG code that `wkt` gives its root CRS: the last `AUTHORITY["EPSG","n"]` (WKT1) or
/// `ID["EPSG",n]` (WKT2) directly inside the root, not a nested datum's, unit's or
/// component's. `None` when the root names no EPSG code.
///
/// ```
/// let wkt = r#"PROJCRS["WGS 84 / UTM zone 11N",BASEGEOGCRS["WGS 84",ID["EPSG",4326]],
///     ID["EPSG",32611]]"#;
/// assert_eq!(crs::epsg_from_wkt(wkt), Some(32611));
/// assert_eq!(crs::epsg_from_wkt(r#"LOCAL_CS["x"]"#), None);
/// ```
pub fn epsg_from_wkt(wkt: &str) -> Option<u32> {
    root(wkt)
        .1
        .iter()
        .filter(|e| {
            e.keyword.eq_ignore_ascii_case("AUTHORITY") || e.keyword.eq_ignore_ascii_case("ID")
        })
        .filter_map(|e| {
            let mut parts = e.inner.splitn(3, ',');
            let name = parts.next()?.trim().trim_matches('"');
            if !name.eq_ignore_ascii_case("EPSG") {
                return None;
            }
            parts.next()?.trim().trim_matches('"').trim().parse().ok()
        })
        .next_back()
}

/// Whether the CRS of `wkt` has angular coordinates, from its kind: `Some(true)` for a
/// geographic CRS (WKT1 `GEOGCS`, WKT2 `GEOGCRS`, or `GEODCRS` with an ellipsoidal
/// coordinate system), `Some(false)` for projected, geocentric, engineering and vertical
/// ones; a compound CRS is its first (horizontal) component's kind, a bound CRS its source's.
/// `None` when the kind is unknown (a `GEODCRS` without its `CS` is either).
///
/// ```
/// assert_eq!(crs::is_geographic_wkt(r#"GEOGCS["ETRS89",DATUM["x"]]"#), Some(true));
/// assert_eq!(crs::is_geographic_wkt(r#"PROJCS["x",GEOGCS["y"]]"#), Some(false));
/// assert_eq!(crs::is_geographic_wkt("nonsense"), None);
/// ```
pub fn is_geographic_wkt(wkt: &str) -> Option<bool> {
    let (keyword, elements) = root(wkt);
    match keyword.to_ascii_uppercase().as_str() {
        "GEOGCS" | "GEOGCRS" | "GEOGRAPHICCRS" => Some(true),
        // Geographic with an ellipsoidal coordinate system, geocentric with a Cartesian one.
        "GEODCRS" | "GEODETICCRS" => elements
            .iter()
            .find(|e| e.keyword.eq_ignore_ascii_case("CS"))
            .and_then(|cs| cs.inner.split(',').next())
            .map(|kind| kind.trim().eq_ignore_ascii_case("ellipsoidal")),
        "PROJCS" | "PROJCRS" | "PROJECTEDCRS" | "GEOCCS" | "LOCAL_CS" | "ENGCRS"
        | "ENGINEERINGCRS" | "VERT_CS" | "VERTCRS" | "VERTICALCRS" => Some(false),
        "COMPD_CS" | "COMPOUNDCRS" => elements.iter().find_map(|e| is_geographic_wkt(e.text)),
        "BOUNDCRS" => elements
            .iter()
            .find(|e| e.keyword.eq_ignore_ascii_case("SOURCECRS"))
            .and_then(|source| root(source.text).1.into_iter().next())
            .and_then(|crs| is_geographic_wkt(crs.text)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTM30_WKT1: &str = r#"PROJCS["ETRS89 / UTM zone 30N",GEOGCS["ETRS89",DATUM["European_Terrestrial_Reference_System_1989",SPHEROID["GRS 1980",6378137,298.257222101,AUTHORITY["EPSG","7019"]],AUTHORITY["EPSG","6258"]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4258"]],PROJECTION["Transverse_Mercator"],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AUTHORITY["EPSG","25830"]]"#;

    #[test]
    fn the_roots_own_authority_not_a_nested_one() {
        assert_eq!(epsg_from_wkt(UTM30_WKT1), Some(25830));
        // Only nested authorities: no code for the CRS itself.
        let nested = r#"PROJCS["x",GEOGCS["y",AUTHORITY["EPSG","4258"]],UNIT["m",1]]"#;
        assert_eq!(epsg_from_wkt(nested), None);
        assert_eq!(
            epsg_from_wkt(r#"PROJCRS["x",ID["EPSG",32611]]"#),
            Some(32611)
        );
        assert_eq!(epsg_from_wkt(r#"LOCAL_CS["x"]"#), None);
        assert_eq!(epsg_from_wkt(""), None);
        // Parentheses delimit as brackets do; keywords and authority names in any case.
        assert_eq!(
            epsg_from_wkt(r#"GEOGCS("x",authority("epsg","4326"))"#),
            Some(4326)
        );
    }

    #[test]
    fn names_may_hold_brackets_commas_and_quotes() {
        let wkt = r#"PROJCS["a [b], ""c"" AUTHORITY[""EPSG"",""1""]",AUTHORITY["EPSG","25831"]]"#;
        assert_eq!(epsg_from_wkt(wkt), Some(25831));
        // An authority inside a name is no authority.
        assert_eq!(
            epsg_from_wkt(r#"PROJCS["AUTHORITY[""EPSG"",""1""]"]"#),
            None
        );
    }

    #[test]
    fn other_authorities_and_bad_codes_give_none_but_a_later_epsg_wins() {
        assert_eq!(
            epsg_from_wkt(r#"PROJCS["x",AUTHORITY["ESRI","102100"]]"#),
            None
        );
        assert_eq!(
            epsg_from_wkt(r#"PROJCS["x",AUTHORITY["EPSG","abc"]]"#),
            None
        );
        assert_eq!(epsg_from_wkt(r#"PROJCS["x",AUTHORITY["EPSG","-5"]]"#), None);
        let two = r#"PROJCRS["x",ID["ESRI",102100],ID["EPSG",3857]]"#;
        assert_eq!(epsg_from_wkt(two), Some(3857));
        let two = r#"PROJCRS["x",ID["EPSG",3857],ID["ESRI",102100]]"#;
        assert_eq!(epsg_from_wkt(two), Some(3857));
    }

    #[test]
    fn unbalanced_or_trailing_text_is_read_no_further_than_the_root() {
        // A root cut short still has the elements that closed.
        assert_eq!(
            epsg_from_wkt(r#"PROJCS["x",AUTHORITY["EPSG","25830"]"#),
            Some(25830)
        );
        assert_eq!(epsg_from_wkt(r#"PROJCS["x",AUTHORITY["EPSG","258"#), None);
        let trailing = r#"PROJCS["x",AUTHORITY["EPSG","25830"]] AUTHORITY["EPSG","1"]"#;
        assert_eq!(epsg_from_wkt(trailing), Some(25830));
        assert_eq!(is_geographic_wkt("]]]["), None);
    }

    #[test]
    fn kinds_of_crs() {
        assert_eq!(is_geographic_wkt(UTM30_WKT1), Some(false));
        assert_eq!(
            is_geographic_wkt(r#"  GEOGCRS["x",CS[ellipsoidal,2]]"#),
            Some(true)
        );
        let geodetic = |cs: &str| format!(r#"GEODCRS["x",DATUM["d"],CS[{cs},3]]"#);
        assert_eq!(is_geographic_wkt(&geodetic("ellipsoidal")), Some(true));
        assert_eq!(is_geographic_wkt(&geodetic("Cartesian")), Some(false));
        assert_eq!(is_geographic_wkt(r#"GEODCRS["x",DATUM["d"]]"#), None);
        assert_eq!(is_geographic_wkt(r#"GEOCCS["x"]"#), Some(false));
        assert_eq!(is_geographic_wkt(r#"VERT_CS["x"]"#), Some(false));
        assert_eq!(is_geographic_wkt(r#"FOO["x"]"#), None);
        // Compound: the horizontal component's kind.
        let compound = |h: &str| format!(r#"COMPD_CS["x",{h}["h",UNIT["u",1]],VERT_CS["v"]]"#);
        assert_eq!(is_geographic_wkt(&compound("GEOGCS")), Some(true));
        assert_eq!(is_geographic_wkt(&compound("PROJCS")), Some(false));
        let bound = r#"BOUNDCRS[SOURCECRS[GEOGCRS["x"]],TARGETCRS[GEOGCRS["WGS 84"]]]"#;
        assert_eq!(is_geographic_wkt(bound), Some(true));
    }
}
