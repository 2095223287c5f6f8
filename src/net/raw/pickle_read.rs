//! A strict reader for the pickles numpy makes of a uint8 picture, shaped (height, width, 3):
//! protocols 2 to 5, C or Fortran order, the `ndarray.__reduce_ex__` forms of numpy 1.x and
//! 2.x. It is not a pickle machine: it names no module, imports nothing and calls nothing.
//! The handful of globals numpy uses are recognised by name and their effect computed here;
//! anything else is refused, naming what was found.

use std::collections::HashMap;

/// A picture decoded from a pickle: packed BGR rows, top to bottom (C order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgrPicture {
    pub width: usize,
    pub height: usize,
    pub bgr: Vec<u8>,
}

/// Limits a pickle must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureLimits {
    pub max_width: usize,
    pub max_height: usize,
}

/// Why a pickle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// The data ended inside an opcode or before STOP.
    #[error("pickle is truncated")]
    Truncated,
    /// An opcode outside the subset numpy uses for arrays.
    #[error("pickle opcode {0:#04x} is not allowed here (only numpy uint8 arrays are accepted)")]
    Opcode(u8),
    /// A global other than the numpy functions an array pickle names.
    #[error("pickle refers to {0}, which is not allowed (only numpy uint8 arrays are accepted)")]
    Global(String),
    /// A protocol this reader does not accept.
    #[error("pickle protocol {0} is not supported (2 to 5 are)")]
    Protocol(u8),
    /// The array's element type is not uint8.
    #[error("array dtype {0:?} is not supported: pictures must be uint8")]
    Dtype(String),
    /// The shape is not (height, width, 3), or is out of bounds.
    #[error("array shape {0} is not a picture (height, width, 3) within the size limit")]
    Shape(String),
    /// The data length does not match the shape.
    #[error("array holds {found} bytes but its shape needs {expected}")]
    Size { expected: usize, found: usize },
    /// A structure numpy never produces (wrong arguments, stack misuse, bad memo).
    #[error("malformed array pickle: {0}")]
    Malformed(String),
}

/// The globals an array pickle may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    Reconstruct,
    Ndarray,
    Dtype,
    FromBuffer,
    CodecsEncode,
}

impl Global {
    fn resolve(module: &str, name: &str) -> Result<Self, PickleError> {
        let numpy_core = |m: &str| matches!(m, "numpy.core" | "numpy._core");
        match (module, name) {
            (m, "_reconstruct") if m.strip_suffix(".multiarray").is_some_and(numpy_core) => Ok(Self::Reconstruct),
            (m, "_frombuffer") if m.strip_suffix(".numeric").is_some_and(numpy_core) => Ok(Self::FromBuffer),
            ("numpy", "ndarray") => Ok(Self::Ndarray),
            ("numpy", "dtype") => Ok(Self::Dtype),
            (m, "dtype") if m.strip_suffix(".multiarray").is_some_and(numpy_core) => Ok(Self::Dtype),
            ("_codecs", "encode") => Ok(Self::CodecsEncode),
            _ => Err(PickleError::Global(format!("{module}.{name}"))),
        }
    }
}

/// A value on the reader's stack. Byte strings borrow from the input where they can.
#[derive(Debug, Clone)]
enum Value<'a> {
    None,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Bytes(std::borrow::Cow<'a, [u8]>),
    Tuple(Vec<Value<'a>>),
    Global(Global),
    /// `numpy.dtype('u1', ...)` before or after its state.
    DtypeU1,
    /// `_reconstruct(ndarray, (0,), b'b')`: an empty array waiting for BUILD.
    EmptyArray,
    Array(BgrPicture),
}

impl Value<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "a bool",
            Self::Int(_) => "an int",
            Self::Str(_) => "a str",
            Self::Bytes(_) => "bytes",
            Self::Tuple(_) => "a tuple",
            Self::Global(_) => "a global",
            Self::DtypeU1 => "a dtype",
            Self::EmptyArray | Self::Array(_) => "an array",
        }
    }
}

/// Most memo entries an array pickle uses (numpy's use about a dozen).
const MAX_MEMO: usize = 64;
/// Deepest stack an array pickle needs.
const MAX_STACK: usize = 64;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value<'a>>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value<'a>>,
    limits: PictureLimits,
}

fn malformed(what: impl Into<String>) -> PickleError {
    PickleError::Malformed(what.into())
}

/// Decodes one pickle holding a (height, width, 3) uint8 array.
pub fn read_picture(data: &[u8], limits: PictureLimits) -> Result<BgrPicture, PickleError> {
    let mut reader = Reader { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), limits };
    reader.run()
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).ok_or(PickleError::Truncated)?;
        let bytes = self.data.get(self.pos..end).ok_or(PickleError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64_len(&mut self) -> Result<usize, PickleError> {
        let n = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        usize::try_from(n).map_err(|_| PickleError::Truncated)
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().take(256).position(|&b| b == b'\n').ok_or(PickleError::Truncated)?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| malformed("a global name is not UTF-8"))?;
        self.pos += end + 1;
        Ok(line)
    }

    fn push(&mut self, value: Value<'a>) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(malformed("stack too deep"));
        }
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value<'a>, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(malformed("pop across a mark"));
        }
        self.stack.pop().ok_or_else(|| malformed("stack underflow"))
    }

    fn text(&mut self, n: usize) -> Result<Value<'a>, PickleError> {
        let bytes = self.take(n)?;
        Ok(Value::Str(std::str::from_utf8(bytes).map_err(|_| malformed("a string is not UTF-8"))?))
    }

    fn tuple_of(&mut self, n: usize) -> Result<(), PickleError> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.push(Value::Tuple(items))
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let top = self.stack.last().ok_or_else(|| malformed("memoize on an empty stack"))?.clone();
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&key) {
            return Err(malformed("too many memo entries"));
        }
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        let value = self.memo.get(&key).cloned().ok_or_else(|| malformed(format!("memo entry {key} is not set")))?;
        self.push(value)
    }

    fn run(&mut self) -> Result<BgrPicture, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let protocol = self.u8()?;
                    if !(2..=5).contains(&protocol) {
                        return Err(PickleError::Protocol(protocol));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a size hint, nothing to check
                }
                b'.' => {
                    return match (self.stack.pop(), self.stack.is_empty()) {
                        (Some(Value::Array(picture)), true) => Ok(picture),
                        (Some(other), true) => {
                            Err(malformed(format!("the pickle holds {}, not an array", other.describe())))
                        }
                        _ => Err(malformed("values left on the stack")),
                    };
                }
                b'(' => {
                    if self.marks.len() >= MAX_STACK {
                        return Err(malformed("too many marks"));
                    }
                    self.marks.push(self.stack.len());
                }
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b't' => {
                    let mark = self.marks.pop().ok_or_else(|| malformed("TUPLE without a mark"))?;
                    let items = self.stack.split_off(mark);
                    self.push(Value::Tuple(items))?;
                }
                0x85 => self.tuple_of(1)?,
                0x86 => self.tuple_of(2)?,
                0x87 => self.tuple_of(3)?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return Err(malformed("integer too large"));
                    }
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                    buf[..n].copy_from_slice(bytes);
                    self.push(Value::Int(i64::from_le_bytes(buf)))?;
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                0x8d => {
                    let n = self.u64_len()?;
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(bytes.into()))?;
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(bytes.into()))?;
                }
                0x8e | 0x96 => {
                    let n = self.u64_len()?;
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(bytes.into()))?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(Global::resolve(module, name)?))?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.push(Value::Global(Global::resolve(module, name)?))?
                        }
                        _ => return Err(malformed("STACK_GLOBAL needs two strings")),
                    }
                }
                0x94 => {
                    let key = self.memo.len() as u32;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = u32::from(self.u8()?);
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = self.u32()?;
                    self.memo_put(key)?;
                }
                b'h' => {
                    let key = u32::from(self.u8()?);
                    self.memo_get(key)?;
                }
                b'j' => {
                    let key = self.u32()?;
                    self.memo_get(key)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let result = self.reduce(callable, args)?;
                    self.push(result)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.pop()?;
                    let result = self.build(target, state)?;
                    self.push(result)?;
                }
                other => return Err(PickleError::Opcode(other)),
            }
        }
    }

    /// The effect of calling one of the allowed globals, computed without calling anything.
    fn reduce(&self, callable: Value<'a>, args: Value<'a>) -> Result<Value<'a>, PickleError> {
        let Value::Global(global) = callable else {
            return Err(malformed(format!("REDUCE on {}", callable.describe())));
        };
        let Value::Tuple(args) = args else { return Err(malformed("REDUCE arguments are not a tuple")) };
        match (global, args.as_slice()) {
            (Global::Reconstruct, [Value::Global(Global::Ndarray), Value::Tuple(shape), Value::Bytes(_)])
                if matches!(shape.as_slice(), [Value::Int(0)]) =>
            {
                Ok(Value::EmptyArray)
            }
            (Global::Dtype, [Value::Str(kind), ..]) => {
                if *kind == "u1" && args.len() == 3 {
                    Ok(Value::DtypeU1)
                } else {
                    Err(PickleError::Dtype(kind.to_string()))
                }
            }
            (Global::CodecsEncode, [Value::Str(text), Value::Str(encoding)])
                if *encoding == "latin1" || *encoding == "latin-1" =>
            {
                // Protocol 2 keeps bytes as their latin-1 text: undo it.
                let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
                Ok(Value::Bytes(bytes.ok_or_else(|| malformed("latin-1 text with a character above 255"))?.into()))
            }
            (Global::FromBuffer, [Value::Bytes(data), Value::DtypeU1, Value::Tuple(shape), Value::Str(order)]) => {
                let fortran = match *order {
                    "C" => false,
                    "F" => true,
                    other => return Err(malformed(format!("array order {other:?}"))),
                };
                Ok(Value::Array(self.picture(shape, fortran, data)?))
            }
            (Global::FromBuffer, [_, dtype, ..]) if !matches!(dtype, Value::DtypeU1) => {
                Err(PickleError::Dtype(dtype.describe().to_string()))
            }
            (global, _) => Err(malformed(format!("unexpected arguments to {global:?}"))),
        }
    }

    fn build(&self, target: Value<'a>, state: Value<'a>) -> Result<Value<'a>, PickleError> {
        let Value::Tuple(state) = state else { return Err(malformed("BUILD state is not a tuple")) };
        match (target, state.as_slice()) {
            // dtype state: (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
            (
                Value::DtypeU1,
                [Value::Int(3 | 4), Value::Str(order), Value::None, Value::None, Value::None, rest @ ..],
            ) if matches!(*order, "|" | "=" | "<" | ">") && (3..=4).contains(&rest.len()) => Ok(Value::DtypeU1),
            (Value::DtypeU1, _) => Err(PickleError::Dtype("uint8 with an unusual layout".into())),
            // ndarray state: (version, shape, dtype, is_fortran, data)
            (Value::EmptyArray, [Value::Int(1), Value::Tuple(shape), dtype, fortran, data]) => {
                if !matches!(dtype, Value::DtypeU1) {
                    return Err(PickleError::Dtype(dtype.describe().into()));
                }
                let fortran = match fortran {
                    Value::Bool(b) => *b,
                    Value::Int(i @ (0 | 1)) => *i == 1,
                    _ => return Err(malformed("is_fortran is not a bool")),
                };
                match data {
                    Value::Bytes(bytes) => Ok(Value::Array(self.picture(shape, fortran, bytes)?)),
                    other => Err(PickleError::Dtype(format!(
                        "array data given as {} (object arrays are refused)",
                        other.describe()
                    ))),
                }
            }
            (target, _) => Err(malformed(format!("BUILD on {}", target.describe()))),
        }
    }

    fn picture(&self, shape: &[Value<'a>], fortran: bool, data: &[u8]) -> Result<BgrPicture, PickleError> {
        let dims: Vec<i64> = shape.iter().map(|v| if let Value::Int(i) = v { *i } else { -1 }).collect();
        let shape_text = format!("{dims:?}");
        let [h, w, 3] = dims.as_slice() else { return Err(PickleError::Shape(shape_text)) };
        let (Ok(height), Ok(width)) = (usize::try_from(*h), usize::try_from(*w)) else {
            return Err(PickleError::Shape(shape_text));
        };
        if width == 0 || height == 0 || width > self.limits.max_width || height > self.limits.max_height {
            return Err(PickleError::Shape(shape_text));
        }
        let expected = width * height * 3;
        if data.len() != expected {
            return Err(PickleError::Size { expected, found: data.len() });
        }
        let bgr = if fortran {
            // Fortran order: the channel index varies slowest, then x, then y fastest.
            let mut out = vec![0u8; expected];
            for c in 0..3 {
                for x in 0..width {
                    let column = &data[(c * width + x) * height..(c * width + x + 1) * height];
                    for (y, &v) in column.iter().enumerate() {
                        out[(y * width + x) * 3 + c] = v;
                    }
                }
            }
            out
        } else {
            data.to_vec()
        };
        Ok(BgrPicture { width, height, bgr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::raw::pickle_write::write_picture;

    const LIMITS: PictureLimits = PictureLimits { max_width: 3840, max_height: 2160 };

    fn fixture_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pickles")
    }

    #[test]
    fn every_numpy_form_of_a_picture_is_read() {
        let expected: Vec<u8> = (0..60).collect();
        let mut seen = 0;
        for entry in std::fs::read_dir(fixture_dir()).unwrap() {
            let path = entry.unwrap().path();
            let picture = read_picture(&std::fs::read(&path).unwrap(), LIMITS)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!((picture.width, picture.height), (5, 4), "{}", path.display());
            assert_eq!(picture.bgr, expected, "{}", path.display());
            seen += 1;
        }
        // numpy 1.x and 2.x, protocols 2-5, four layouts each.
        assert_eq!(seen, 32);
    }

    #[test]
    fn our_writer_reads_back() {
        let bgr: Vec<u8> = (0..300 * 200 * 3).map(|i| (i % 251) as u8).collect();
        let mut pickle = Vec::new();
        write_picture(&mut pickle, 300, 200, &bgr);
        assert_eq!(read_picture(&pickle, LIMITS).unwrap(), BgrPicture { width: 300, height: 200, bgr });
    }

    fn numpy2(protocol: u8, layout: &str) -> Vec<u8> {
        std::fs::read(fixture_dir().join(format!("numpy2-p{protocol}-{layout}.pkl"))).unwrap()
    }

    #[test]
    fn a_pickle_that_would_run_a_command_is_refused_by_name() {
        // pickle.dumps of a class whose __reduce__ returns (os.system, ("echo pwned",)).
        let evil = b"\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\necho pwned\x94\x85\x94R\x94.";
        assert_eq!(read_picture(evil, LIMITS), Err(PickleError::Global("posix.system".into())));
        let evil2 = b"cos\nsystem\n(S'echo pwned'\ntR.";
        assert_eq!(read_picture(evil2, LIMITS), Err(PickleError::Global("os.system".into())));
        let builtins = b"\x80\x02c__builtin__\neval\nq\x00X\x01\x00\x00\x001q\x01\x85R.";
        assert!(matches!(read_picture(builtins, LIMITS), Err(PickleError::Global(g)) if g == "__builtin__.eval"));
    }

    #[test]
    fn other_dtypes_and_object_arrays_are_refused() {
        // np.zeros((2, 2, 3), dtype=np.float64), protocol 2: dtype 'f8'.
        let mut float = numpy2(2, "c");
        let at = float.windows(4).position(|w| w == b"\x02\x00\x00\x00").unwrap();
        float[at + 4..at + 6].copy_from_slice(b"f8");
        assert_eq!(read_picture(&float, LIMITS), Err(PickleError::Dtype("f8".into())));
        let mut object = numpy2(4, "c");
        let at = object.windows(2).position(|w| w == b"u1").unwrap();
        object[at..at + 2].copy_from_slice(b"O8");
        assert!(matches!(read_picture(&object, LIMITS), Err(PickleError::Dtype(_))));
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let limits = PictureLimits { max_width: 4, max_height: 4 };
        assert!(matches!(read_picture(&numpy2(3, "c"), limits), Err(PickleError::Shape(_))));
        // Negative and huge dimensions, written by our writer's layout with patched ints.
        for (h, w) in [(-4i32, 5i32), (4, i32::MAX), (0, 5)] {
            let mut pickle = Vec::new();
            write_picture(&mut pickle, 77, 66, &vec![0; 77 * 66 * 3]);
            let at = pickle.windows(4).position(|win| win == b"K\x01K\x42").unwrap();
            let mut patched = pickle[..at + 2].to_vec();
            patched.push(b'J');
            patched.extend_from_slice(&h.to_le_bytes());
            patched.push(b'J');
            patched.extend_from_slice(&w.to_le_bytes());
            patched.extend_from_slice(&pickle[at + 6..]);
            assert!(matches!(read_picture(&patched, LIMITS), Err(PickleError::Shape(_))), "{h}x{w}");
        }
        // A shape whose bytes do not match the data.
        let mut pickle = Vec::new();
        write_picture(&mut pickle, 2, 2, &[0; 12]);
        let at = pickle.windows(4).position(|w| w == b"K\x02K\x02").unwrap();
        pickle[at + 1] = 3;
        assert_eq!(read_picture(&pickle, LIMITS), Err(PickleError::Size { expected: 18, found: 12 }));
    }

    #[test]
    fn truncation_anywhere_is_refused_cleanly() {
        let whole = numpy2(5, "c");
        for cut in 0..whole.len() {
            assert!(read_picture(&whole[..cut], LIMITS).is_err(), "cut at {cut}");
        }
        for protocol in [0u8, 1, 6] {
            assert_eq!(read_picture(&[0x80, protocol, b'.'], LIMITS), Err(PickleError::Protocol(protocol)));
        }
        assert_eq!(read_picture(b"\x80\x04K\x01.", LIMITS), Err(malformed("the pickle holds an int, not an array")));
    }
}
