//! The input shapes of the API as data, and the two checks every request body goes through.
//!
//! 1. **Type check** ([`check_members`]): does each member hold the kind of value its shape
//!    wants? The first mismatch is a `SerializationException` with the text of AWS's Coral
//!    deserializer (kinesalite `validations/index.js::checkTypes`; recorded texts in
//!    `test/helpers.js::assertType`). It also normalises: nulls and unknown members are dropped,
//!    numbers truncated and clamped as Coral does, base64 decoded, timestamps made milliseconds.
//! 2. **Validation** ([`validate_members`]): the model's constraints (required, length, range,
//!    pattern, enum) in the model's member order, collected into one `ValidationException`
//!    ("N validation errors detected: ..." with at most 10, joined by "; ").
//!
//! Constraints are those of botocore's `service-2.json`; the rendering of values and the texts of
//! the messages are AWS's as recorded in kinesalite's tests.

use crate::error::ApiError;
use crate::tree::Tree;
use crate::wire::check_base64;

/// At most this many violations are reported in one `ValidationException`.
pub(crate) const VALIDATION_ERRORS_MAX: usize = 10;

/// A string pattern: its text as AWS prints it, and a matcher of the whole string.
pub(crate) struct Pattern {
    pub text: &'static str,
    pub matches: fn(&str) -> bool,
}

pub(crate) struct StrShape {
    pub min: Option<usize>,
    pub max: Option<usize>,
    pub pattern: Option<&'static Pattern>,
    /// Allowed values, in the order AWS lists them in its message.
    pub values: Option<&'static [&'static str]>,
}

pub(crate) struct ListShape {
    pub member: &'static Shape,
    pub min: Option<usize>,
    pub max: Option<usize>,
    /// How AWS renders each member of this list in a message (Java's default `toString`);
    /// `None` renders the member's value.
    pub member_str: Option<&'static str>,
}

pub(crate) struct MapShape {
    pub key: &'static StrShape,
    pub value: &'static StrShape,
    pub min: Option<usize>,
    pub max: Option<usize>,
}

pub(crate) enum Shape {
    Str(StrShape),
    /// `Integer` (i32) or `Long` (i64).
    Int {
        min: Option<i64>,
        max: Option<i64>,
        long: bool,
    },
    Bool,
    Blob {
        max: Option<usize>,
    },
    Timestamp,
    List(ListShape),
    Map(MapShape),
    Struct(&'static [Member]),
}

pub(crate) struct Member {
    pub name: &'static str,
    pub required: bool,
    /// A member whose presence lifts `required` (`StreamARN` for `StreamName`).
    pub unless: Option<&'static str>,
    pub shape: &'static Shape,
}

// ---------------------------------------------------------------------------------------------
// Type check

const NUMBER_CLASS: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";
const LIST_NOT_EXPECTED: &str = "Start of list found where not expected";
const MAP_NOT_EXPECTED: &str = "Start of structure or map found where not expected.";

fn type_error(message: impl Into<String>) -> ApiError {
    ApiError::serialization(message)
}

/// Type-checks the members of a structure (the body itself, or a nested one), in document order,
/// and returns the known, non-null members normalised, in the order of `members`.
pub(crate) fn check_members(value: Tree, members: &'static [Member]) -> Result<Tree, ApiError> {
    let Tree::Map(given) = value else {
        return Err(ApiError::serialization(""));
    };
    let mut checked: Vec<(&'static str, Tree)> = Vec::new();
    for (key, v) in given {
        let Some(member) = members.iter().find(|m| m.name == key) else {
            continue;
        };
        if let Some(v) = check_type(v, member.shape)? {
            checked.push((member.name, v));
        }
    }
    let mut ordered = Vec::with_capacity(checked.len());
    for member in members {
        if let Some(pos) = checked.iter().position(|(name, _)| *name == member.name) {
            let (name, v) = checked.swap_remove(pos);
            ordered.push((name.to_owned(), v));
        }
    }
    Ok(Tree::Map(ordered))
}

/// Checks one value against its shape; `None` for a null (treated as absent).
fn check_type(value: Tree, shape: &'static Shape) -> Result<Option<Tree>, ApiError> {
    let value = match (value, shape) {
        (Tree::Null, _) => return Ok(None),
        // Tag 1 + a number is a timestamp in epoch milliseconds (the Java SDKs' CBOR).
        (Tree::Tag(1, inner), Shape::Timestamp) => {
            return match *inner {
                Tree::Int(ms) => Ok(Some(Tree::Int(ms.clamp(0, i128::from(u64::MAX))))),
                Tree::Float(ms) => Ok(Some(Tree::Int(i128::from(ms.round() as u64)))),
                other => check_type(other, shape),
            };
        }
        // Other tags carry no meaning for Kinesis: look through them.
        (Tree::Tag(_, inner), _) => return check_type(*inner, shape),
        (value, _) => value,
    };
    let checked = match shape {
        Shape::Bool => match value {
            Tree::Bool(b) => Tree::Bool(b),
            Tree::Int(_) | Tree::Float(_) => {
                return Err(type_error(format!(
                    "{NUMBER_CLASS} can not be converted to an Boolean"
                )))
            }
            Tree::Str(s) => match s.to_ascii_lowercase().as_str() {
                // Coral converts these (comment in kinesalite `validations/index.js`).
                "true" | "yes" | "1" => Tree::Bool(true),
                "false" | "no" | "0" => Tree::Bool(false),
                _ => {
                    return Err(type_error(format!(
                        "'{}' can not be converted to an Boolean",
                        s.to_uppercase()
                    )))
                }
            },
            other => return Err(structure_error(&other)),
        },
        Shape::Int { long, .. } => {
            let class = if *long { "Long" } else { "Integer" };
            let (lo, hi) = if *long {
                (i128::from(i64::MIN), i128::from(i64::MAX))
            } else {
                (i128::from(i32::MIN), i128::from(i32::MAX))
            };
            match value {
                Tree::Int(i) => Tree::Int(i.clamp(lo, hi)),
                // Truncated towards negative infinity, then clamped (`as` saturates; NaN → 0).
                Tree::Float(f) => Tree::Int((f.floor() as i128).clamp(lo, hi)),
                Tree::Bool(_) => {
                    return Err(type_error(format!(
                        "class java.lang.Boolean can not be converted to an {class}"
                    )))
                }
                Tree::Str(_) => {
                    return Err(type_error(format!(
                        "class java.lang.String can not be converted to an {class}"
                    )))
                }
                other => return Err(structure_error(&other)),
            }
        }
        Shape::Str(_) => match value {
            Tree::Str(s) => Tree::Str(s),
            Tree::Bool(_) => {
                return Err(type_error(
                    "class java.lang.Boolean can not be converted to an String",
                ))
            }
            Tree::Int(_) | Tree::Float(_) => {
                return Err(type_error(format!(
                    "{NUMBER_CLASS} can not be converted to an String"
                )))
            }
            other => return Err(structure_error(&other)),
        },
        Shape::Blob { .. } => match value {
            Tree::Bytes(b) => Tree::Bytes(b),
            Tree::Str(s) => match check_base64(&s) {
                Ok(bytes) => Tree::Bytes(bytes),
                Err(problem) => return Err(type_error(problem.message(&s))),
            },
            Tree::Bool(_) => {
                return Err(type_error(
                    "class java.lang.Boolean can not be converted to a Blob",
                ))
            }
            Tree::Int(_) | Tree::Float(_) => {
                return Err(type_error(format!(
                    "{NUMBER_CLASS} can not be converted to a Blob"
                )))
            }
            other => return Err(structure_error(&other)),
        },
        Shape::Timestamp => match value {
            // Untagged numbers are epoch seconds, as in JSON.
            Tree::Int(s) => Tree::Int(s.saturating_mul(1000).clamp(0, i128::from(u64::MAX))),
            Tree::Float(s) => Tree::Int(i128::from(crate::Timestamp::from_seconds_f64(s).0)),
            Tree::Bool(_) => {
                return Err(type_error(
                    "class java.lang.Boolean can not be converted to milliseconds since epoch",
                ))
            }
            Tree::Str(_) => {
                return Err(type_error(
                    "class java.lang.String can not be converted to milliseconds since epoch",
                ))
            }
            other => return Err(structure_error(&other)),
        },
        Shape::List(list) => match value {
            Tree::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(check_type(item, list.member)?.unwrap_or(Tree::Null));
                }
                Tree::List(out)
            }
            Tree::Map(_) | Tree::Bytes(_) => return Err(type_error(MAP_NOT_EXPECTED)),
            _ => return Err(type_error("Expected list or null")),
        },
        Shape::Map(_) => match value {
            Tree::Map(members) => {
                let mut out = Vec::with_capacity(members.len());
                for (k, v) in members {
                    let v = check_type(v, STRING_FOR_MAPS)?.unwrap_or(Tree::Null);
                    out.push((k, v));
                }
                Tree::Map(out)
            }
            Tree::List(_) => return Err(type_error(LIST_NOT_EXPECTED)),
            _ => return Err(type_error("Expected map or null")),
        },
        Shape::Struct(members) => match value {
            Tree::Map(_) => check_members(value, members)?,
            Tree::List(_) => return Err(type_error(LIST_NOT_EXPECTED)),
            _ => return Err(type_error("Expected null")),
        },
    };
    Ok(Some(checked))
}

/// Map values of this API are all strings.
static STRING_FOR_MAPS: &Shape = &Shape::Str(StrShape {
    min: None,
    max: None,
    pattern: None,
    values: None,
});

/// The error for a list, map or byte string where a scalar was expected.
fn structure_error(value: &Tree) -> ApiError {
    match value {
        Tree::List(_) => type_error(LIST_NOT_EXPECTED),
        _ => type_error(MAP_NOT_EXPECTED),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation

/// Validates a type-checked structure; `Err` is the `ValidationException`.
pub(crate) fn validate(value: &Tree, members: &'static [Member]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    validate_members(value, members, &Path::Root, &mut errors);
    if errors.is_empty() {
        return Ok(());
    }
    errors.truncate(VALIDATION_ERRORS_MAX);
    let plural = if errors.len() == 1 { "" } else { "s" };
    Err(ApiError::validation(format!(
        "{} validation error{plural} detected: {}",
        errors.len(),
        errors.join("; ")
    )))
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Where a value sits in the request, rendered the way AWS names it (`records.1.member.data`)
/// only when an error is reported: the accepted path allocates nothing for it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'static str),
    Item(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Member(Path::Root, name) => lower_first(name),
            Path::Member(parent, name) => format!("{}.{}", parent.render(), lower_first(name)),
            Path::Item(parent, i) => format!("{}.{}.member", parent.render(), i + 1),
        }
    }
}

fn push(errors: &mut Vec<String>, value: Option<String>, path: &Path, constraint: &str) {
    if errors.len() >= VALIDATION_ERRORS_MAX {
        return;
    }
    let path = path.render();
    let value = match value {
        Some(v) => format!("'{v}'"),
        None => "null".to_owned(),
    };
    errors.push(format!(
        "Value {value} at '{path}' failed to satisfy constraint: {constraint}"
    ));
}

fn validate_members(
    value: &Tree,
    members: &'static [Member],
    parent: &Path,
    errors: &mut Vec<String>,
) {
    for member in members {
        let path = Path::Member(parent, member.name);
        match value.get(member.name) {
            None | Some(Tree::Null) => {
                let excused = member
                    .unless
                    .is_some_and(|other| !matches!(value.get(other), None | Some(Tree::Null)));
                if member.required && !excused {
                    push(errors, None, &path, "Member must not be null");
                }
            }
            Some(v) => validate_value(v, member.shape, &path, errors),
        }
    }
}

fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// The constraints of a string shape, as AWS lists them for list members and map keys/values.
fn str_constraints(shape: &StrShape) -> String {
    let mut parts = Vec::new();
    if let Some(max) = shape.max {
        parts.push(format!(
            "Member must have length less than or equal to {max}"
        ));
    }
    if let Some(min) = shape.min {
        parts.push(format!(
            "Member must have length greater than or equal to {min}"
        ));
    }
    if let Some(pattern) = shape.pattern {
        parts.push(format!(
            "Member must satisfy regular expression pattern: {}",
            pattern.text
        ));
    }
    if let Some(values) = shape.values {
        parts.push(format!(
            "Member must satisfy enum value set: [{}]",
            values.join(", ")
        ));
    }
    format!("[{}]", parts.join(", "))
}

fn str_ok(s: &str, shape: &StrShape) -> bool {
    let len = utf16_len(s);
    shape.min.is_none_or(|min| len >= min)
        && shape.max.is_none_or(|max| len <= max)
        && shape.pattern.is_none_or(|p| (p.matches)(s))
        && shape.values.is_none_or(|values| values.contains(&s))
}

/// How AWS prints a value in a validation message.
fn render(value: &Tree, shape: &Shape) -> String {
    match (value, shape) {
        (Tree::Str(s), _) => s.clone(),
        (Tree::Int(i), _) => i.to_string(),
        (Tree::Float(f), _) => f.to_string(),
        (Tree::Bool(b), _) => b.to_string(),
        (Tree::Bytes(b), _) => {
            format!("java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]", b.len())
        }
        (Tree::Null, _) => "null".to_owned(),
        (Tree::List(items), Shape::List(list)) => {
            let rendered: Vec<String> = items
                .iter()
                .map(|item| match list.member_str {
                    Some(s) => s.to_owned(),
                    None => render(item, list.member),
                })
                .collect();
            format!("[{}]", rendered.join(", "))
        }
        (Tree::Map(members), Shape::Map(_)) => {
            let rendered: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{k}={}", render(v, STRING_FOR_MAPS)))
                .collect();
            format!("{{{}}}", rendered.join(", "))
        }
        (Tree::Map(members), _) => {
            let rendered: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{k}: {}", render(v, STRING_FOR_MAPS)))
                .collect();
            format!("{{{}}}", rendered.join(", "))
        }
        (Tree::List(items), _) => {
            let rendered: Vec<String> = items.iter().map(|v| render(v, STRING_FOR_MAPS)).collect();
            format!("[{}]", rendered.join(", "))
        }
        (Tree::Tag(_, inner), _) => render(inner, shape),
    }
}

fn validate_value(value: &Tree, shape: &'static Shape, path: &Path, errors: &mut Vec<String>) {
    let shown = || Some(render(value, shape));
    match (shape, value) {
        (Shape::Str(s), Tree::Str(text)) => {
            let len = utf16_len(text);
            if let Some(p) = s.pattern {
                if !(p.matches)(text) {
                    let c = format!("Member must satisfy regular expression pattern: {}", p.text);
                    push(errors, shown(), path, &c);
                }
            }
            if let Some(min) = s.min {
                if len < min {
                    let c = format!("Member must have length greater than or equal to {min}");
                    push(errors, shown(), path, &c);
                }
            }
            if let Some(max) = s.max {
                if len > max {
                    let c = format!("Member must have length less than or equal to {max}");
                    push(errors, shown(), path, &c);
                }
            }
            if let Some(values) = s.values {
                if !values.contains(&text.as_str()) {
                    let c = format!(
                        "Member must satisfy enum value set: [{}]",
                        values.join(", ")
                    );
                    push(errors, shown(), path, &c);
                }
            }
        }
        (Shape::Int { min, max, .. }, Tree::Int(i)) => {
            if let Some(min) = min {
                if *i < i128::from(*min) {
                    let c = format!("Member must have value greater than or equal to {min}");
                    push(errors, shown(), path, &c);
                }
            }
            if let Some(max) = max {
                if *i > i128::from(*max) {
                    let c = format!("Member must have value less than or equal to {max}");
                    push(errors, shown(), path, &c);
                }
            }
        }
        (Shape::Blob { max: Some(max) }, Tree::Bytes(b)) if b.len() > *max => {
            let c = format!("Member must have length less than or equal to {max}");
            push(errors, shown(), path, &c);
        }
        (Shape::List(list), Tree::List(items)) => {
            length_checks(items.len(), list.min, list.max, shown, path, errors);
            match list.member {
                Shape::Struct(members) => {
                    for (i, item) in items.iter().enumerate() {
                        let item_path = Path::Item(path, i);
                        match item {
                            Tree::Null => {
                                push(errors, None, &item_path, "Member must not be null");
                            }
                            _ => validate_members(item, members, &item_path, errors),
                        }
                    }
                }
                Shape::Str(member) => {
                    let all_ok = items.iter().all(|item| match item {
                        Tree::Str(s) => str_ok(s, member),
                        _ => false,
                    });
                    if !all_ok {
                        let c = format!(
                            "Member must satisfy constraint: {}",
                            str_constraints(member)
                        );
                        push(errors, shown(), path, &c);
                    }
                }
                _ => {}
            }
        }
        (Shape::Map(map), Tree::Map(members)) => {
            length_checks(members.len(), map.min, map.max, shown, path, errors);
            if !members.iter().all(|(k, _)| str_ok(k, map.key)) {
                let c = format!(
                    "Map keys must satisfy constraint: {}",
                    str_constraints(map.key)
                );
                push(errors, shown(), path, &c);
            }
            let values_ok = members.iter().all(|(_, v)| match v {
                Tree::Str(s) => str_ok(s, map.value),
                _ => false,
            });
            if !values_ok {
                let c = format!(
                    "Map value must satisfy constraint: {}",
                    str_constraints(map.value)
                );
                push(errors, shown(), path, &c);
            }
        }
        (Shape::Struct(members), Tree::Map(_)) => {
            validate_members(value, members, path, errors);
        }
        _ => {}
    }
}

fn length_checks(
    len: usize,
    min: Option<usize>,
    max: Option<usize>,
    shown: impl Fn() -> Option<String>,
    path: &Path,
    errors: &mut Vec<String>,
) {
    if let Some(min) = min {
        if len < min {
            let c = format!("Member must have length greater than or equal to {min}");
            push(errors, shown(), path, &c);
        }
    }
    if let Some(max) = max {
        if len > max {
            let c = format!("Member must have length less than or equal to {max}");
            push(errors, shown(), path, &c);
        }
    }
}
