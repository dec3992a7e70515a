//! RowDescription and DataRow: validated once, then iterated without copying.

use crate::postgres::reader::Reader;
use crate::postgres::Error;

/// One column of a RowDescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub table_oid: u32,
    pub column: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    pub format: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowDescription<'a> {
    pub count: u16,
    raw: &'a [u8],
}

impl<'a> RowDescription<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<RowDescription<'a>, Error> {
        let mut r = Reader::new(body, "RowDescription");
        let count = r.count()?;
        let raw = r.rest();
        let rd = RowDescription { count, raw };
        let mut check = Reader::new(raw, "RowDescription");
        for _ in 0..count {
            field(&mut check)?;
        }
        check.end()?;
        Ok(rd)
    }

    pub fn fields(&self) -> impl Iterator<Item = Field<'a>> {
        let mut r = Reader::new(self.raw, "RowDescription");
        (0..self.count).map_while(move |_| field(&mut r).ok())
    }
}

fn field<'a>(r: &mut Reader<'a>) -> Result<Field<'a>, Error> {
    Ok(Field {
        name: r.cstr()?,
        table_oid: r.u32()?,
        column: r.i16()?,
        type_oid: r.u32()?,
        type_size: r.i16()?,
        type_modifier: r.i32()?,
        format: r.i16()?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRow<'a> {
    pub count: u16,
    raw: &'a [u8],
}

impl<'a> DataRow<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<DataRow<'a>, Error> {
        let mut r = Reader::new(body, "DataRow");
        let count = r.count()?;
        let raw = r.rest();
        let mut check = Reader::new(raw, "DataRow");
        for _ in 0..count {
            check.nullable()?;
        }
        check.end()?;
        Ok(DataRow { count, raw })
    }

    /// The column values (`None` for NULL), borrowed from the message.
    pub fn columns(&self) -> impl Iterator<Item = Option<&'a [u8]>> {
        let mut r = Reader::new(self.raw, "DataRow");
        (0..self.count).map_while(move |_| r.nullable().ok())
    }
}
