//! The storage methods: Diesel queries against the model's `table!`.
//!
//! Reads go through one boxed, scoped `SELECT` (`__stratasync_scoped`);
//! mutations address a row by its cursor columns (the id, or the composite
//! key). Rows are always read in cursor order (group by group for pages of
//! a model grouped by a field), so locks are taken in a stable order too.
//! Inserts and updates run through `Prepared`, so they stay prepared on the
//! connection (Diesel would prepare them again on every run, one more round
//! trip each).
//!
//! Pages are keyset ranges that PostgreSQL reads straight off an index: the
//! cursor condition is a row-value comparison `(a, b) > ($1, $2)` (never
//! `a > $1 OR (a = $1 AND b > $2)`, which no index can answer), and a model
//! grouped by a field pages one group at a time (`group = $g`, never
//! `group = ANY(...)`, under which an index scan starts at the beginning of
//! the group on every page). With an index on `(group, cursor...)` each page
//! reads the rows it returns and no others.

use super::{codec, codec_kind, column, decode, eq_inner, eq_value, key_value, private, reference};
use crate::model::{Field, Group, Kind, Model};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

/// The scoped query helper, a free function in the `const` block.
fn scoped_fn() -> Ident {
    Ident::new("__stratasync_scoped", Span::call_site())
}

/// `diesel_async::RunQueryDsl::method(query, conn)`, called by path: the
/// user's module usually has Diesel's own `RunQueryDsl` in scope too.
fn run(method: &str, query: TokenStream) -> TokenStream {
    let p = private();
    let method = Ident::new(method, Span::call_site());
    quote!(#p::diesel_async::RunQueryDsl::#method(#query, conn))
}

/// A parameter name, or `_name` when the body does not use it.
fn param(name: &str, used: bool) -> Ident {
    if used {
        Ident::new(name, Span::call_site())
    } else {
        format_ident!("_{}", name)
    }
}

pub fn methods(model: &Model) -> TokenStream {
    let methods = [
        count(),
        page(model),
        by_key(model),
        find(model),
        insert(model),
        update(model),
        delete(model),
        set_archived(model),
        cascade_from(model),
    ];
    quote!(#(#methods)*)
}

/// `fn __stratasync_scoped(scope)`: the boxed `SELECT` of the rows visible
/// in `scope`.
pub fn helpers(model: &Model, guard: &TokenStream) -> TokenStream {
    let p = private();
    let ident = &model.ident;
    let table = &model.table;
    let scoped = scoped_fn();
    let pg = quote!(#p::diesel::pg::Pg);
    let select = select(model);
    let filtered = match (&model.scope, &model.group) {
        (Some(path), _) => quote_spanned!(path.span()=> query.filter(#path(scope))),
        (None, Group::Global) => quote!(query),
        (None, Group::Field(i)) => group_filter(model, &model.fields[*i]),
        (None, Group::OwnId) => match &model.kind {
            Kind::Standard { id } => group_filter(model, &model.fields[id.index]),
            Kind::Composite { .. } => unreachable!("checked: a composite `group = own` model has a `scope`"),
        },
    };
    let scope = param("scope", !matches!((&model.scope, &model.group), (None, Group::Global)));
    quote! {
        fn #scoped<'a>(
            #scope: &'a #p::ScopeFilter,
        ) -> #p::diesel::dsl::IntoBoxed<
            'a,
            #p::diesel::dsl::Select<#table::table, #p::diesel::dsl::AsSelect<#ident, #pg>>,
            #pg,
        >
        #guard
        {
            let query = #table::table.select(#select).into_boxed();
            #filtered
        }
    }
}

/// `group_column IN (the authorized groups parsed as the column type)`.
fn group_filter(model: &Model, field: &Field) -> TokenStream {
    let column = column(model, field);
    let ty = &field.inner_ty;
    quote_spanned!(ty.span()=> query.filter(#column.eq_any(scope.groups_as::<#ty>())))
}

/// `Model::as_select()`.
fn select(model: &Model) -> TokenStream {
    let p = private();
    let ident = &model.ident;
    quote!(<#ident as #p::diesel::SelectableHelper<#p::diesel::pg::Pg>>::as_select())
}

/// `.order_by(c0.asc()).then_order_by(c1.asc())...` over the cursor.
fn order(model: &Model) -> TokenStream {
    let columns = model.kind.cursor().iter().map(|k| column(model, &model.fields[k.index]));
    let mut out = TokenStream::new();
    for (i, column) in columns.enumerate() {
        if i == 0 {
            out.extend(quote!(.order_by(#column.asc())));
        } else {
            out.extend(quote!(.then_order_by(#column.asc())));
        }
    }
    out
}

/// `.filter(c0.eq(&row.f0)).filter(c1.eq(&row.f1))...`: the row itself.
fn row_filter(model: &Model, row: &Ident) -> TokenStream {
    let filters = model.kind.cursor().iter().map(|k| {
        let field = &model.fields[k.index];
        let ident = &field.ident;
        let filter = eq_value(model, field, quote!(&#row.#ident));
        quote!(.filter(#filter))
    });
    quote!(#(#filters)*)
}

/// Rows strictly after `after` in cursor order: `c0 > $1` for one column,
/// the row-value comparison `ROW(c0, c1) > ROW($1, $2)` for several (an
/// index range on an index whose columns start with the cursor's, or with
/// the group's and then the cursor's).
fn after_filter(model: &Model) -> TokenStream {
    let p = private();
    let (columns, values): (Vec<TokenStream>, Vec<TokenStream>) = model
        .kind
        .cursor()
        .iter()
        .map(|k| {
            let field = &model.fields[k.index];
            let (ident, column) = (&field.ident, column(model, field));
            (column.clone(), quote!(#p::bind(#column, &after.#ident)))
        })
        .unzip();
    if let ([column], [value]) = (&columns[..], &values[..]) {
        return quote!(#column.gt(#value));
    }
    quote! {
        #p::diesel::IntoSql::into_sql::<
            #p::diesel::sql_types::Record<(#(<#columns as #p::diesel::Expression>::SqlType,)*)>
        >((#(#columns,)*))
        .gt((#(#values,)*))
    }
}

fn count() -> TokenStream {
    let p = private();
    let scoped = scoped_fn();
    let get_result = run("get_result", quote!(#scoped(scope).count()));
    quote! {
        fn count<'a>(
            conn: &'a mut #p::Conn,
            scope: &'a #p::ScopeFilter,
        ) -> #p::BoxFuture<'a, #p::diesel::QueryResult<i64>> {
            #p::boxed(async move { #get_result.await })
        }
    }
}

fn page(model: &Model) -> TokenStream {
    match (&model.scope, &model.group) {
        (None, Group::Field(i)) => grouped_page(model, &model.fields[*i]),
        _ => scoped_page(model),
    }
}

/// A page of a model grouped by a field: group by group, in the order of
/// the caller's groups, each group an index range in cursor order
/// (`group = $1 AND cursor > $2 ORDER BY cursor LIMIT $3`), continuing
/// into the next groups until the page is full.
fn grouped_page(model: &Model, group: &Field) -> TokenStream {
    let p = private();
    let table = &model.table;
    let select = select(model);
    let after_filter = after_filter(model);
    let order = order(model);
    let group_filter = eq_inner(model, group, quote!(group));
    let (ident, inner) = (&group.ident, &group.inner_ty);
    let groups = quote_spanned!(inner.span()=> scope.groups_as::<#inner>());
    let is_row_group = if group.nullable {
        quote!(row.#ident.as_ref() == ::std::option::Option::Some(group))
    } else {
        quote!(&row.#ident == group)
    };
    let load = run("load", quote!(query #order .limit(remaining)));
    quote! {
        fn page<'a>(
            conn: &'a mut #p::Conn,
            scope: &'a #p::ScopeFilter,
            after: ::std::option::Option<&'a Self>,
            limit: i64,
        ) -> #p::BoxFuture<'a, #p::diesel::QueryResult<::std::vec::Vec<Self>>> {
            #p::boxed(async move {
                let groups = #groups;
                let start = match after {
                    ::std::option::Option::None => 0,
                    ::std::option::Option::Some(row) => match groups.iter().position(|group| #is_row_group) {
                        ::std::option::Option::Some(start) => start,
                        ::std::option::Option::None => return ::std::result::Result::Ok(::std::vec::Vec::new()),
                    },
                };
                let mut after = after;
                let mut rows = ::std::vec::Vec::new();
                for group in &groups[start..] {
                    let remaining = limit - rows.len() as i64;
                    if remaining <= 0 {
                        break;
                    }
                    let mut query = #table::table.select(#select).filter(#group_filter).into_boxed();
                    if let ::std::option::Option::Some(after) = after.take() {
                        query = query.filter(#after_filter);
                    }
                    rows.extend(#load.await?);
                }
                ::std::result::Result::Ok(rows)
            })
        }
    }
}

/// A page of the rows in the model's scope (custom, own id or global):
/// `scope AND cursor > $1 ORDER BY cursor LIMIT $2`.
fn scoped_page(model: &Model) -> TokenStream {
    let p = private();
    let scoped = scoped_fn();
    let after_filter = after_filter(model);
    let order = order(model);
    let load = run("load", quote!(query #order .limit(limit)));
    quote! {
        fn page<'a>(
            conn: &'a mut #p::Conn,
            scope: &'a #p::ScopeFilter,
            after: ::std::option::Option<&'a Self>,
            limit: i64,
        ) -> #p::BoxFuture<'a, #p::diesel::QueryResult<::std::vec::Vec<Self>>> {
            #p::boxed(async move {
                let mut query = #scoped(scope);
                if let ::std::option::Option::Some(after) = after {
                    query = query.filter(#after_filter);
                }
                #load.await
            })
        }
    }
}

fn by_key(model: &Model) -> TokenStream {
    let p = private();
    let scoped = scoped_fn();
    let order = order(model);
    let arms: Vec<TokenStream> = model
        .batch_keys
        .iter()
        .map(|&i| {
            let field = &model.fields[i];
            let (wire, key) = (&field.wire, key_value(field));
            let filter = eq_value(model, field, quote!(value));
            quote! {
                #wire => {
                    let ::std::option::Option::Some(value) = #key::parse_key(value) else {
                        return ::std::result::Result::Ok(::std::option::Option::Some(::std::vec::Vec::new()));
                    };
                    #scoped(scope).filter(#filter)
                }
            }
        })
        .collect();
    let used = !arms.is_empty();
    // One load after the match: a row type that does not load is reported
    // once, not once per key.
    let load = run("load", quote!(query #order .limit(limit)));
    let body = if used {
        quote! {
            let query = match key {
                #(#arms)*
                _ => return ::std::result::Result::Ok(::std::option::Option::None),
            };
            #load.await.map(::std::option::Option::Some)
        }
    } else {
        quote!(::std::result::Result::Ok(::std::option::Option::None))
    };
    let (conn, scope, key, value, limit) =
        (param("conn", used), param("scope", used), param("key", used), param("value", used), param("limit", used));
    quote! {
        fn by_key<'a>(
            #conn: &'a mut #p::Conn,
            #scope: &'a #p::ScopeFilter,
            #key: &'a str,
            #value: &'a str,
            #limit: i64,
        ) -> #p::BoxFuture<'a, #p::diesel::QueryResult<::std::option::Option<::std::vec::Vec<Self>>>> {
            #p::boxed(async move { #body })
        }
    }
}

fn find(model: &Model) -> TokenStream {
    let p = private();
    let table = &model.table;
    let select = select(model);
    let none = quote!(return ::std::result::Result::Ok(::std::option::Option::None));
    let (reads, filters, standard) = match &model.kind {
        Kind::Standard { id } => {
            let field = &model.fields[id.index];
            let (key, filter) = (key_value(field), eq_value(model, field, quote!(__key0)));
            let read = quote! {
                let ::std::option::Option::Some(__key0) = #key::parse_key(model_id) else {
                    if #key::is_non_canonical(model_id) {
                        return ::std::result::Result::Err(#p::MutationError::NonCanonicalModelId);
                    }
                    #none
                };
            };
            (vec![read], vec![quote!(.filter(#filter))], true)
        }
        Kind::Composite { keys } => keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let field = &model.fields[k.index];
                let var = format_ident!("__key{}", i);
                let (wire, codec, kind) = (&field.wire, codec(field), codec_kind(field));
                let filter = eq_value(model, field, quote!(#var));
                // An absent key names no row; a present one must fit the
                // key's codec (a UUID in its canonical spelling, say).
                let read = quote! {
                    let ::std::option::Option::Some(#var) = payload.get(#wire) else { #none };
                    let ::std::option::Option::Some(#var) = #codec::from_json(#var) else {
                        return ::std::result::Result::Err(#p::MutationError::InvalidValue {
                            kind: #kind,
                            field: ::std::string::String::from(#wire),
                        });
                    };
                };
                (read, quote!(.filter(#filter)))
            })
            .fold((Vec::new(), Vec::new(), false), |(mut r, mut f, s), (read, filter)| {
                r.push(read);
                f.push(filter);
                (r, f, s)
            }),
    };
    let (model_id, payload) = (param("model_id", standard), param("payload", !standard));
    let first = run("first", quote!(#table::table.select(#select) #(#filters)* .for_update()));
    quote! {
        fn find<'a>(
            conn: &'a mut #p::Conn,
            #model_id: &'a str,
            #payload: &'a #p::JsonObject,
        ) -> #p::BoxFuture<'a, ::std::result::Result<::std::option::Option<Self>, #p::MutationError>> {
            #p::boxed(async move {
                #(#reads)*
                #first.await.optional()
                    .map_err(#p::MutationError::from)
            })
        }
    }
}

/// `let __vN = decode(data, "wire", CodecKind::X, <Ty as Codec<Kind>>::from_json)?;` and the
/// matching `__vN.map(|v| table::col.eq(v))` (absent → column default on
/// insert, untouched on update).
fn decoded(model: &Model, fields: &[&Field]) -> (Vec<TokenStream>, Vec<TokenStream>) {
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let var = format_ident!("__v{}", i);
            let decode = decode(field);
            let eq = eq_value(model, field, quote!(v));
            let value = quote!(#var.map(|v| #eq));
            (quote!(let #var = #decode?;), value)
        })
        .unzip()
}

/// One value, or a tuple of several.
fn tuple(values: &[TokenStream]) -> TokenStream {
    match values {
        [one] => one.clone(),
        many => quote!((#(#many),*)),
    }
}

fn insert(model: &Model) -> TokenStream {
    let p = private();
    let table = &model.table;
    let id = match &model.kind {
        Kind::Standard { id } => Some(id.index),
        Kind::Composite { .. } => None,
    };
    let fields: Vec<&Field> =
        model.fields.iter().enumerate().filter(|(i, f)| f.insert && Some(*i) != id).map(|(_, f)| f).collect();
    let (mut reads, mut values) = decoded(model, &fields);
    if let Some(i) = id {
        let field = &model.fields[i];
        let (key, kind, ty) = (key_value(field), codec_kind(field), &field.ty);
        let error = quote_spanned!(ty.span()=> #p::model_id_error::<#ty>(model_id, #kind));
        reads.insert(
            0,
            quote! {
                let ::std::option::Option::Some(__id) = #key::parse_key(model_id) else {
                    return ::std::result::Result::Err(#error);
                };
            },
        );
        values.insert(0, eq_value(model, field, quote!(__id)));
    }
    let references = reference::checks(model, &fields, reference::insert_group(model, &fields));
    let used = !values.is_empty();
    let body = if used {
        let values = tuple(&values);
        let execute = run("execute", quote!(#p::Prepared(#p::diesel::insert_into(#table::table).values(#values))));
        quote! {
            #(#reads)*
            #references
            #execute
                .await
                .map(|_| ())
                .map_err(#p::MutationError::from)
        }
    } else {
        quote!(::std::result::Result::Err(#p::MutationError::UnsupportedAction(#p::ActionKind::Insert)))
    };
    let (conn, model_id, data) = (param("conn", used), param("model_id", id.is_some()), param("data", used));
    quote! {
        fn insert<'a>(
            #conn: &'a mut #p::Conn,
            #model_id: &'a str,
            #data: &'a #p::JsonObject,
        ) -> #p::BoxFuture<'a, ::std::result::Result<(), #p::MutationError>> {
            #p::boxed(async move { #body })
        }
    }
}

fn update(model: &Model) -> TokenStream {
    let p = private();
    let table = &model.table;
    let fields: Vec<&Field> = match model.kind {
        Kind::Standard { .. } => model.fields.iter().filter(|f| f.update).collect(),
        Kind::Composite { .. } => Vec::new(),
    };
    let used = !fields.is_empty();
    let body = if used {
        let (reads, values) = decoded(model, &fields);
        let references = reference::checks(model, &fields, reference::update_group(model));
        let changes = tuple(&values);
        let target = row_filter(model, &Ident::new("target", Span::call_site()));
        let execute = run("execute", quote!(#p::Prepared(#p::diesel::update(#table::table #target).set(#changes))));
        quote! {
            #(#reads)*
            #references
            #execute
                .await
                .map_err(#p::MutationError::from)
        }
    } else {
        quote!(::std::result::Result::Err(#p::MutationError::UpdateNotConfigured))
    };
    let (conn, target, data) = (param("conn", used), param("target", used), param("data", used));
    quote! {
        fn update<'a>(
            #conn: &'a mut #p::Conn,
            #target: &'a Self,
            #data: &'a #p::JsonObject,
        ) -> #p::BoxFuture<'a, ::std::result::Result<usize, #p::MutationError>> {
            #p::boxed(async move { #body })
        }
    }
}

fn delete(model: &Model) -> TokenStream {
    let p = private();
    let table = &model.table;
    let target = row_filter(model, &Ident::new("target", Span::call_site()));
    let execute = run("execute", quote!(#p::diesel::delete(#table::table #target)));
    quote! {
        fn delete<'a>(
            conn: &'a mut #p::Conn,
            target: &'a Self,
        ) -> #p::BoxFuture<'a, ::std::result::Result<usize, #p::MutationError>> {
            #p::boxed(async move {
                #execute
                    .await
                    .map_err(#p::MutationError::from)
            })
        }
    }
}

fn set_archived(model: &Model) -> TokenStream {
    let p = private();
    let table = &model.table;
    let signature = |used: bool| {
        let (conn, target) = (param("conn", used), param("target", used));
        quote! {
            fn set_archived<'a>(
                #conn: &'a mut #p::Conn,
                #target: &'a Self,
                at: ::std::option::Option<#p::chrono::DateTime<#p::chrono::Utc>>,
            ) -> #p::BoxFuture<'a, ::std::result::Result<usize, #p::MutationError>>
        }
    };
    let Some(i) = model.archive else {
        let signature = signature(false);
        return quote! {
            #signature {
                #p::boxed(async move {
                    ::std::result::Result::Err(if at.is_some() {
                        #p::MutationError::ArchiveNotConfigured
                    } else {
                        #p::MutationError::UnarchiveNotConfigured
                    })
                })
            }
        };
    };
    let field = &model.fields[i];
    let (wire, codec, kind) = (&field.wire, codec(field), codec_kind(field));
    let set = eq_value(model, field, quote!(value));
    let target = row_filter(model, &Ident::new("target", Span::call_site()));
    let signature = signature(true);
    let execute = run("execute", quote!(#p::Prepared(#p::diesel::update(#table::table #target).set(#set))));
    quote! {
        #signature {
            #p::boxed(async move {
                let json = at.map_or(#p::serde_json::Value::Null, |at| {
                    #p::serde_json::Value::from(at.timestamp_millis())
                });
                let ::std::option::Option::Some(value) = #codec::from_json(&json) else {
                    return ::std::result::Result::Err(#p::MutationError::InvalidValue {
                        kind: #kind,
                        field: ::std::string::String::from(#wire),
                    });
                };
                #execute
                    .await
                    .map_err(#p::MutationError::from)
            })
        }
    }
}

/// For each `cascade(parent = P, field = f)`: the rows whose `f` is the
/// deleted parent's id. Several cascades from one parent are merged
/// without duplicates.
fn cascade_from(model: &Model) -> TokenStream {
    let p = private();
    let table = &model.table;
    let select = select(model);
    let order = order(model);
    let several = model.cascades.len() > 1;
    let branches = model.cascades.iter().map(|cascade| {
        let field = &model.fields[cascade.field];
        let (key, filter) = (key_value(field), eq_value(model, field, quote!(key)));
        let parent = &cascade.parent;
        let parent_name = quote_spanned!(parent.span()=> <#parent as #p::SyncModel>::SPEC.name);
        let load = run("load", quote!(#table::table.select(#select).filter(#filter) #order .for_update()));
        let query = quote!(#load.await);
        let found = if several {
            quote! {
                for row in #query? {
                    if seen.insert(<Self as #p::SyncStorage>::sync_id(&row)) {
                        rows.push(row);
                    }
                }
            }
        } else {
            quote!(return #query;)
        };
        quote! {
            if parent == #parent_name {
                if let ::std::option::Option::Some(key) = #key::parse_key(parent_id) {
                    #found
                }
            }
        }
    });
    let branches: Vec<TokenStream> = branches.collect();
    let used = !branches.is_empty();
    let body = if several {
        quote! {
            let mut rows = ::std::vec::Vec::new();
            let mut seen = ::std::collections::HashSet::new();
            #(#branches)*
            ::std::result::Result::Ok(rows)
        }
    } else {
        quote! {
            #(#branches)*
            ::std::result::Result::Ok(::std::vec::Vec::new())
        }
    };
    let (conn, parent, parent_id) = (param("conn", used), param("parent", used), param("parent_id", used));
    quote! {
        fn cascade_from<'a>(
            #conn: &'a mut #p::Conn,
            #parent: &'a str,
            #parent_id: &'a str,
        ) -> #p::BoxFuture<'a, #p::diesel::QueryResult<::std::vec::Vec<Self>>> {
            #p::boxed(async move { #body })
        }
    }
}
