//! Writes a BGR picture as the pickle numpy makes of a (height, width, 3) uint8 array:
//! protocol 3, `numpy.core.multiarray._reconstruct` then `__setstate__`, which numpy 1.x
//! and 2.x both load and every Python 3 reads.

/// Appends the pickle of a packed BGR picture (`width * height * 3` bytes) to `out`.
pub fn write_picture(out: &mut Vec<u8>, width: usize, height: usize, bgr: &[u8]) {
    debug_assert_eq!(bgr.len(), width * height * 3);
    out.reserve(bgr.len() + 160);
    out.extend_from_slice(b"\x80\x03");
    out.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\n");
    out.extend_from_slice(b"cnumpy\nndarray\n");
    int(out, 0);
    out.extend_from_slice(b"\x85C\x01b\x87R"); // (0,), b'b' -> _reconstruct(ndarray, (0,), b'b')
    out.push(b'('); // the state tuple
    int(out, 1);
    int(out, height as u64);
    int(out, width as u64);
    int(out, 3);
    out.push(0x87);
    out.extend_from_slice(b"cnumpy\ndtype\n");
    unicode(out, "u1");
    out.extend_from_slice(b"\x89\x88\x87R"); // dtype('u1', False, True)
    out.push(b'(');
    int(out, 3);
    unicode(out, "|");
    out.extend_from_slice(b"NNN");
    out.extend_from_slice(b"J\xff\xff\xff\xffJ\xff\xff\xff\xff");
    int(out, 0);
    out.extend_from_slice(b"tb"); // dtype.__setstate__((3, '|', None, None, None, -1, -1, 0))
    out.push(0x89); // not Fortran order
    out.push(b'B');
    out.extend_from_slice(&(bgr.len() as u32).to_le_bytes());
    out.extend_from_slice(bgr);
    out.extend_from_slice(b"tb."); // ndarray.__setstate__((1, shape, dtype, False, data))
}

fn int(out: &mut Vec<u8>, v: u64) {
    if v < 256 {
        out.extend_from_slice(&[b'K', v as u8]);
    } else if v < 65536 {
        out.push(b'M');
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else {
        out.push(b'J');
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
}

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}
