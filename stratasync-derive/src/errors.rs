//! The errors of one derive, in the order they were found.
//!
//! Like `darling`'s accumulator, but holding `syn::Error`s, which keep the
//! first and the last token of what they point at: an error about a whole
//! `key = value` item underlines all of it (a `darling::Error` keeps one
//! token's span, and stable Rust cannot join spans).

/// Every error of a model so far.
#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    /// Adds an error (a `darling::Error` may hold several).
    pub fn push(&mut self, error: impl Into<syn::Error>) {
        self.0.push(error.into());
    }

    /// The value of `result`, or `None` with its error added.
    pub fn handle<T, E: Into<syn::Error>>(&mut self, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// All the errors as one (`Ok` if there were none).
    pub fn finish(self) -> syn::Result<()> {
        let mut errors = self.0.into_iter();
        let Some(mut first) = errors.next() else { return Ok(()) };
        for error in errors {
            first.combine(error);
        }
        Err(first)
    }
}
