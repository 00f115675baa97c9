//! Numbers as the API reads them from paths, query strings and token
//! subjects: decimal digits only. Rust's `parse` would also take a leading
//! `+`, so `+5` and `5` would name one resource two ways; here it is a 400.

/// An id written one way only: digits, no sign, no leading zero.
pub fn canonical(text: &str) -> Option<u64> {
    (digits(text) && (text == "0" || !text.starts_with('0'))).then(|| text.parse().ok()).flatten()
}

/// A count (`limit`): digits, no sign.
pub fn count(text: &str) -> Option<usize> {
    digits(text).then(|| text.parse().ok()).flatten()
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_a_leading_zero_or_anything_but_digits_is_refused() {
        assert_eq!(canonical("5"), Some(5));
        assert_eq!(canonical("0"), Some(0));
        assert_eq!(canonical("18446744073709551615"), Some(u64::MAX));
        for bad in ["+5", "-5", "05", "", " 5", "5 ", "18446744073709551616", "٥"] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
        assert_eq!(count("05"), Some(5));
        assert_eq!(count("+5"), None);
    }
}
