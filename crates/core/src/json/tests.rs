//! Tests of the JSON parser and writer, checked against serde_json where it is the reference.

use super::*;

fn serde_accepts(text: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(text).is_ok()
}

#[test]
fn parses_every_kind_of_value() {
    let doc = br#" {"a": [null, true, false, 0, 42, "x"], "b": {"c": {}} , "d": []} "#;
    let mut o = parse(doc).unwrap().into_object().unwrap();
    assert_eq!(
        o.take("a").unwrap(),
        Some(Value::Array(vec![
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Number(Some(0)),
            Value::Number(Some(42)),
            Value::String("x".into()),
        ]))
    );
    let mut b = o.take("b").unwrap().unwrap().into_object().unwrap();
    assert_eq!(b.take("c").unwrap(), Some(Value::Object(Object::default())));
    assert_eq!(o.take("d").unwrap(), Some(Value::Array(vec![])));
    assert_eq!(o.take("a").unwrap(), None, "taking removes the field");
}

#[test]
fn accepts_and_refuses_the_same_documents_as_serde_json() {
    let docs: &[&[u8]] = &[
        b"{}",
        b"[]",
        b"0",
        b"-0",
        b"1.5e-3",
        b"1E+2",
        b"\"\\u00e9\"",
        b"\"\\ud83d\\ude00\"",
        b" \n\t\r[1 , 2]\n",
        b"{\"a\":{\"b\":[{}]}}",
        b"\"\xc3\xa9\"",
        b"null",
        b"true",
        b"",
        b" ",
        b"{",
        b"[1,]",
        b"{\"a\":1,}",
        b"{,}",
        b"[,1]",
        b"01",
        b"1.",
        b".5",
        b"-",
        b"1e",
        b"+1",
        b"tru",
        b"nul",
        b"True",
        b"'a'",
        b"\"a",
        b"\"\\x\"",
        b"\"\\u12\"",
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"\\ud800\\u0041\"",
        b"\"a\tb\"",
        b"\"\x01\"",
        b"{\"a\" 1}",
        b"{a:1}",
        b"[1 2]",
        b"{} {}",
        b"[]x",
        b"\xff",
        b"\"\xc3\"",
        b"{\"a\":}",
        b"[1,[2,[3]]",
        b"NaN",
        b"Infinity",
        b"1 /* c */",
    ];
    for doc in docs {
        let text = String::from_utf8_lossy(doc);
        assert_eq!(parse(doc).is_ok(), serde_accepts(doc), "{text:?}");
    }
}

#[test]
fn numbers_keep_only_non_negative_integers_that_fit() {
    let number = |text: &str| match parse(text.as_bytes()).unwrap() {
        Value::Number(n) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(number("18446744073709551615"), Some(u64::MAX));
    assert_eq!(number("18446744073709551616"), None);
    assert_eq!(number("1795689954123"), Some(1_795_689_954_123));
    for not_u64 in ["-1", "-0", "1.0", "1e3", "0.5"] {
        assert_eq!(number(not_u64), None, "{not_u64}");
    }
}

#[test]
fn escapes_and_surrogate_pairs_decode() {
    let s: String = from_str(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#).unwrap();
    assert_eq!(s, "a\"b\\c/d\u{8}\u{c}\n\r\té😀");
}

#[test]
fn written_strings_read_back_the_same_in_serde_json() {
    let mut all_controls: String = (0u8..0x20).map(char::from).collect();
    all_controls.push_str("\"\\/ é 😀 \u{7f} \u{2028} end");
    for s in ["", "plain", "lqt_0123", all_controls.as_str()] {
        let mut out = String::new();
        write_str(&mut out, s);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
        assert_eq!(from_str::<String>(&out).unwrap(), s);
        assert_eq!(
            out,
            serde_json::to_string(s).unwrap(),
            "the same text as serde_json"
        );
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
    assert!(
        serde_accepts(nested(MAX_DEPTH).as_bytes()),
        "the same limit as serde_json"
    );
    assert!(!serde_accepts(nested(MAX_DEPTH + 1).as_bytes()));
    let err = parse(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            JsonError::Syntax {
                what: "nested too deeply",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        parse(nested(100_000).as_bytes()).is_err(),
        "no stack overflow"
    );
}

#[test]
fn syntax_errors_say_where_without_quoting_the_input() {
    let err = parse(b"{\n  \"secret_value\": tru\n}").unwrap_err();
    assert_eq!(
        err,
        JsonError::Syntax {
            what: "expected a value",
            line: 2,
            column: 19
        }
    );
    assert!(!err.to_string().contains("secret"), "{err}");
    assert_eq!(err.to_string(), "expected a value at line 2 column 19");
    assert!(matches!(
        parse(b"\"ok\" \xff"),
        Err(JsonError::Syntax {
            what: "invalid UTF-8",
            ..
        })
    ));
    assert!(matches!(
        parse(b""),
        Err(JsonError::Syntax {
            what: "unexpected end of input",
            ..
        })
    ));
}

#[test]
fn fields_read_by_type_and_name_what_is_wrong() {
    let mut o = parse(br#"{"s":"x","n":7,"z":null,"b":true,"bad":"7"}"#)
        .unwrap()
        .into_object()
        .unwrap();
    assert_eq!(o.required::<String>("s").unwrap(), "x");
    assert_eq!(o.u64("n").unwrap(), 7);
    assert_eq!(o.opt_u64("z").unwrap(), None);
    assert_eq!(o.optional::<String>("absent").unwrap(), None);
    assert!(o.flag("b").unwrap());
    assert!(!o.flag("absent").unwrap());
    assert_eq!(
        o.u64("bad").unwrap_err().to_string(),
        "field `bad`: expected a non-negative integer"
    );
    assert_eq!(
        o.required::<String>("gone").unwrap_err().to_string(),
        "missing field `gone`"
    );
}

#[test]
fn a_field_given_twice_is_refused() {
    let mut o = parse(br#"{"id":"a","id":"b"}"#)
        .unwrap()
        .into_object()
        .unwrap();
    assert_eq!(
        o.required::<String>("id").unwrap_err().to_string(),
        "duplicate field `id`"
    );
}

#[test]
fn unknown_fields_are_reported_before_missing_ones() {
    let o = parse(br#"{"id":"a","extra":1}"#)
        .unwrap()
        .into_object()
        .unwrap();
    assert_eq!(
        o.only(&["id", "name"]),
        Err(JsonError::UnknownField("extra".into()))
    );
    assert_eq!(o.only(&["id", "extra"]), Ok(()));
}

#[test]
fn objects_are_written_in_order_with_nulls_and_skips() {
    let mut out = String::new();
    ObjectWriter::new(&mut out)
        .str("a", "x\"y")
        .u64("n", 12)
        .opt_u64("m", None)
        .opt_str("o", None)
        .some_str("skipped", None)
        .bool("t", true)
        .value("list", &["v", "w"][..])
        .end();
    assert_eq!(
        out,
        r#"{"a":"x\"y","n":12,"m":null,"o":null,"t":true,"list":["v","w"]}"#
    );
    assert!(serde_accepts(out.as_bytes()));
}

#[test]
fn strings_without_escapes_borrow_the_input() {
    let mut o = parse(br#"{"plain":"abc","escaped":"a\nb"}"#)
        .unwrap()
        .into_object()
        .unwrap();
    let plain = o.take("plain").unwrap();
    assert!(
        matches!(plain, Some(Value::String(Cow::Borrowed("abc")))),
        "{plain:?}"
    );
    let escaped = o.take("escaped").unwrap();
    assert!(
        matches!(&escaped, Some(Value::String(Cow::Owned(s))) if s == "a\nb"),
        "{escaped:?}"
    );
}

#[test]
fn a_document_with_too_many_values_is_refused() {
    let array = |zeros: usize| format!("[{}0]", "0,".repeat(zeros - 1));
    assert!(
        parse(array(MAX_VALUES - 1).as_bytes()).is_ok(),
        "the array and its items: the limit"
    );
    assert_eq!(
        parse(array(MAX_VALUES).as_bytes()),
        Err(JsonError::TooManyValues)
    );
    let objects = format!("[{}{{}}]", "{},".repeat(MAX_VALUES));
    assert_eq!(parse(objects.as_bytes()), Err(JsonError::TooManyValues));
}

#[test]
fn object_builds_a_whole_object_as_text() {
    assert_eq!(object(|_| {}), "{}");
    let text = object(|o| {
        o.str("a", "b").object("c", |c| {
            c.u64("d", 1);
        });
    });
    assert_eq!(text, r#"{"a":"b","c":{"d":1}}"#);
}
