//! `kith-plugin-sdk`'s public API as text: its source parsed with `syn`, every item a plugin can
//! name from the crate root (through `pub mod` and `pub use`) listed one per line and sorted, so
//! the committed listing (`plugin-sdk/public-api.txt`, checked in `contracts.rs`) changes only
//! when the surface does.
//!
//! Listed: modules; functions and methods with their signatures; structs with their public
//! fields (and whether they have private ones); enums with their variants; traits with their
//! items (and which have default bodies); trait implementations; type aliases, constants and
//! statics with their types; exported macros with their patterns; and on each, the attributes
//! that change what a plugin may do with it (`derive`, `non_exhaustive`, `doc(hidden)`,
//! `deprecated`, `must_use`, `repr`, `cfg`). Types are as written in the source. The contents of
//! a `#[doc(hidden)]` module are not part of the API and are not listed.
//!
//! What the renderer cannot place (a glob re-export, an `impl` for a type it cannot find) fails
//! the listing rather than leaving something out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quote::ToTokens;

/// A module's path from the crate root (`[]` is the root, `["types"]` is `crate::types`).
type ModPath = Vec<String>;

/// The crate's modules, read from its files.
struct Crate {
    modules: BTreeMap<ModPath, Vec<syn::Item>>,
}

/// Renders the public API of the crate whose root file is `lib` (named `name` in the listing).
pub(crate) fn listing(name: &str, lib: &Path) -> String {
    let mut krate = Crate { modules: BTreeMap::new() };
    krate.load(Vec::new(), lib);
    let mut lines = BTreeSet::new();
    let mut places: BTreeMap<(ModPath, String), BTreeSet<String>> = BTreeMap::new();
    krate.walk(&[], name, &mut lines, &mut places);
    for (module, items) in &krate.modules {
        for item in items {
            if let syn::Item::Impl(imp) = item {
                let Some(target) = krate.self_type(module, imp) else { continue };
                for path in places.get(&target).into_iter().flatten() {
                    render_impl(path, imp, &mut lines);
                }
            }
        }
    }
    let mut out = String::new();
    for (_, line) in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

impl Crate {
    /// Reads the module in `file` and, recursively, the modules it declares (`mod x;` is
    /// `x.rs` beside the crate root, or in the folder named after a module's file otherwise).
    fn load(&mut self, path: ModPath, file: &Path) {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let dir = if path.is_empty() { file.parent().unwrap().to_path_buf() } else { file.with_extension("") };
        self.add(path, parsed.items, &dir);
    }

    fn add(&mut self, path: ModPath, items: Vec<syn::Item>, dir: &Path) {
        for item in &items {
            if let syn::Item::Mod(module) = item {
                let mut child = path.clone();
                child.push(module.ident.to_string());
                match &module.content {
                    Some((_, inner)) => self.add(child, inner.clone(), &dir.join(module.ident.to_string())),
                    None => {
                        let file: PathBuf = dir.join(format!("{}.rs", module.ident));
                        self.load(child, &file);
                    }
                }
            }
        }
        // Modules declared twice under different `cfg`s share one entry.
        self.modules.entry(path).or_default().extend(items);
    }

    /// Lists the public items of `module`, reachable as `public`, and remembers where each
    /// named item can be reached (`places`), for its `impl` blocks.
    fn walk(
        &self,
        module: &[String],
        public: &str,
        lines: &mut BTreeSet<(String, String)>,
        places: &mut BTreeMap<(ModPath, String), BTreeSet<String>>,
    ) {
        for item in self.modules.get(module).into_iter().flatten() {
            if let syn::Item::Macro(mac) = item
                && mac.attrs.iter().any(|a| a.path().is_ident("macro_export"))
                && let Some(ident) = &mac.ident
            {
                // Exported macros live at the crate root, wherever they are defined.
                let root = public.split("::").next().unwrap_or(public);
                render_macro(&format!("{root}::{ident}"), mac, lines);
                continue;
            }
            if !is_public(item) {
                continue;
            }
            match item {
                syn::Item::Use(use_item) => {
                    let mut leaves = Vec::new();
                    use_leaves(&use_item.tree, Vec::new(), &mut leaves);
                    for (source, alias) in leaves {
                        assert!(
                            alias != "*",
                            "the public API listing does not follow `pub use {}`: name the items",
                            source.join("::")
                        );
                        let here = format!("{public}::{alias}");
                        match self.resolve(module, &source) {
                            Some((target_module, ident)) => {
                                self.place(&target_module, &ident, &here, &use_item.attrs, lines, places)
                            }
                            None => {
                                let attrs = attributes(&use_item.attrs);
                                lines.insert((here.clone(), format!("{attrs}pub use {here} = {}", source.join("::"))));
                            }
                        }
                    }
                }
                other => {
                    if let Some(ident) = item_ident(other) {
                        self.place(module, &ident, &format!("{public}::{ident}"), &[], lines, places);
                    }
                }
            }
        }
    }

    /// Lists the item `ident` of `module` as reachable at `here` (through a `use` carrying
    /// `via` attributes, if any).
    fn place(
        &self,
        module: &[String],
        ident: &str,
        here: &str,
        via: &[syn::Attribute],
        lines: &mut BTreeSet<(String, String)>,
        places: &mut BTreeMap<(ModPath, String), BTreeSet<String>>,
    ) {
        if let Some(child) = self.child_module(module, ident) {
            let declared = self.modules.get(module).into_iter().flatten().find_map(|item| match item {
                syn::Item::Mod(m) if m.ident == ident => Some(m),
                _ => None,
            });
            let attrs: Vec<syn::Attribute> =
                declared.map(|m| m.attrs.clone()).unwrap_or_default().into_iter().chain(via.iter().cloned()).collect();
            lines.insert((here.to_owned(), format!("{}pub mod {here}", attributes(&attrs))));
            if !is_hidden(&attrs) {
                self.walk(&child, here, lines, places);
            }
            return;
        }
        let items = self.modules.get(module).into_iter().flatten();
        let mut found = false;
        for item in items {
            match item {
                syn::Item::Use(use_item) => {
                    // A re-export of a re-export: follow it.
                    let mut leaves = Vec::new();
                    use_leaves(&use_item.tree, Vec::new(), &mut leaves);
                    for (source, alias) in leaves {
                        if alias == ident
                            && let Some((target_module, target)) = self.resolve(module, &source)
                        {
                            self.place(&target_module, &target, here, via, lines, places);
                            found = true;
                        }
                    }
                }
                other if item_ident(other).as_deref() == Some(ident) => {
                    render_item(here, other, via, lines);
                    places.entry((module.to_vec(), ident.to_owned())).or_default().insert(here.to_owned());
                    found = true;
                }
                _ => {}
            }
        }
        assert!(found, "the public API listing cannot find `{ident}` in `crate::{}`", module.join("::"));
    }

    /// The module `ident` declared in `module`, if there is one.
    fn child_module(&self, module: &[String], ident: &str) -> Option<ModPath> {
        let mut child = module.to_vec();
        child.push(ident.to_owned());
        self.modules.contains_key(&child).then_some(child)
    }

    /// Where the path `source` (of a `use`, or a type) written in `module` leads inside the
    /// crate: a module and an item name; `None` when it leaves the crate.
    fn resolve(&self, module: &[String], source: &[String]) -> Option<(ModPath, String)> {
        let (last, init) = source.split_last()?;
        let mut at: ModPath = module.to_vec();
        for (i, segment) in init.iter().enumerate() {
            match segment.as_str() {
                "crate" if i == 0 => at.clear(),
                "self" if i == 0 => {}
                "super" => {
                    at.pop();
                }
                name => {
                    at.push(name.to_owned());
                    if !self.modules.contains_key(&at) {
                        // Not a module of the crate: another crate (first segment), or a
                        // path the listing does not follow.
                        assert!(i == 0, "the public API listing cannot follow `{}`", source.join("::"));
                        return None;
                    }
                }
            }
        }
        if init.is_empty() && last != "crate" && !self.defines(&at, last) {
            return None;
        }
        Some((at, last.clone()))
    }

    /// Whether `module` defines or imports a name `ident`.
    fn defines(&self, module: &[String], ident: &str) -> bool {
        self.modules.get(module).into_iter().flatten().any(|item| match item {
            syn::Item::Use(use_item) => {
                let mut leaves = Vec::new();
                use_leaves(&use_item.tree, Vec::new(), &mut leaves);
                leaves.iter().any(|(_, alias)| alias == ident)
            }
            other => item_ident(other).as_deref() == Some(ident),
        })
    }

    /// The crate item an `impl` block in `module` is for; `None` for a type the crate does
    /// not define (a trait implemented for a foreign type is listed only when the trait is the
    /// crate's: there are none, and the listing fails if one appears).
    fn self_type(&self, module: &[String], imp: &syn::ItemImpl) -> Option<(ModPath, String)> {
        let syn::Type::Path(path) = &*imp.self_ty else {
            panic!("the public API listing cannot place `impl {}`", tidy(&imp.self_ty.to_token_stream().to_string()))
        };
        let segments: Vec<String> = path.path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() == 1 {
            let ident = &segments[0];
            let defined =
                self.modules.get(module).into_iter().flatten().any(|item| {
                    !matches!(item, syn::Item::Use(_)) && item_ident(item).as_deref() == Some(ident.as_str())
                });
            if defined {
                return Some((module.to_vec(), ident.clone()));
            }
            // Imported: follow the `use` that names it.
            for item in self.modules.get(module).into_iter().flatten() {
                if let syn::Item::Use(use_item) = item {
                    let mut leaves = Vec::new();
                    use_leaves(&use_item.tree, Vec::new(), &mut leaves);
                    if let Some((source, _)) = leaves.into_iter().find(|(_, alias)| alias == ident) {
                        return self.resolve(module, &source);
                    }
                }
            }
            let generic = imp.generics.type_params().any(|p| p.ident == ident);
            assert!(
                !generic || imp.trait_.is_none(),
                "the public API listing cannot place a blanket `impl` for `{ident}`"
            );
            return None;
        }
        self.resolve(module, &segments)
    }
}

/// The `(path, name)` pairs a `use` tree brings in (`a::b::{c, d as e}` → `a::b::c` as `c`,
/// `a::b::d` as `e`; `a::*` as `*`).
fn use_leaves(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    match tree {
        syn::UseTree::Path(path) => {
            let mut prefix = prefix;
            prefix.push(path.ident.to_string());
            use_leaves(&path.tree, prefix, out);
        }
        syn::UseTree::Name(name) => {
            let mut full = prefix;
            let ident = name.ident.to_string();
            if ident == "self" {
                let alias = full.last().cloned().unwrap_or_default();
                out.push((full, alias));
            } else {
                full.push(ident.clone());
                out.push((full, ident));
            }
        }
        syn::UseTree::Rename(rename) => {
            let mut full = prefix;
            full.push(rename.ident.to_string());
            out.push((full, rename.rename.to_string()));
        }
        // Listed as `*`: a public glob fails the listing; a private one names nothing it needs.
        syn::UseTree::Glob(_) => {
            let mut full = prefix;
            full.push("*".to_owned());
            out.push((full, "*".to_owned()));
        }
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                use_leaves(tree, prefix.clone(), out);
            }
        }
    }
}

fn visibility(item: &syn::Item) -> Option<&syn::Visibility> {
    Some(match item {
        syn::Item::Const(i) => &i.vis,
        syn::Item::Enum(i) => &i.vis,
        syn::Item::ExternCrate(i) => &i.vis,
        syn::Item::Fn(i) => &i.vis,
        syn::Item::Mod(i) => &i.vis,
        syn::Item::Static(i) => &i.vis,
        syn::Item::Struct(i) => &i.vis,
        syn::Item::Trait(i) => &i.vis,
        syn::Item::TraitAlias(i) => &i.vis,
        syn::Item::Type(i) => &i.vis,
        syn::Item::Union(i) => &i.vis,
        syn::Item::Use(i) => &i.vis,
        _ => return None,
    })
}

fn is_public(item: &syn::Item) -> bool {
    matches!(visibility(item), Some(syn::Visibility::Public(_)))
}

fn item_ident(item: &syn::Item) -> Option<String> {
    Some(
        match item {
            syn::Item::Const(i) => &i.ident,
            syn::Item::Enum(i) => &i.ident,
            syn::Item::Fn(i) => &i.sig.ident,
            syn::Item::Mod(i) => &i.ident,
            syn::Item::Static(i) => &i.ident,
            syn::Item::Struct(i) => &i.ident,
            syn::Item::Trait(i) => &i.ident,
            syn::Item::TraitAlias(i) => &i.ident,
            syn::Item::Type(i) => &i.ident,
            syn::Item::Union(i) => &i.ident,
            _ => return None,
        }
        .to_string(),
    )
}

/// Whether `#[doc(hidden)]` is among `attrs`.
fn is_hidden(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("doc") && tidy(&a.meta.to_token_stream().to_string()) == "doc(hidden)")
}

/// The attributes that change what a plugin may do with an item, as `#[...] ` each (derives
/// sorted), in a stable order.
fn attributes(attrs: &[syn::Attribute]) -> String {
    let mut out = Vec::new();
    for attr in attrs {
        let path = attr.path();
        let name = path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        match name.as_str() {
            "derive" => {
                let mut derives = Vec::new();
                let _ = attr.parse_nested_meta(|meta| {
                    derives.push(tidy(&meta.path.to_token_stream().to_string()));
                    Ok(())
                });
                derives.sort();
                out.push(format!("#[derive({})]", derives.join(", ")));
            }
            "doc" if is_hidden(std::slice::from_ref(attr)) => out.push("#[doc(hidden)]".to_owned()),
            "non_exhaustive" | "deprecated" | "must_use" | "repr" | "cfg" => {
                out.push(format!("#[{}]", tidy(&attr.meta.to_token_stream().to_string())))
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out.into_iter().map(|a| a + " ").collect()
}

fn render_item(here: &str, item: &syn::Item, via: &[syn::Attribute], lines: &mut BTreeSet<(String, String)>) {
    let mut line = |path: &str, text: String| {
        lines.insert((path.to_owned(), text));
    };
    let with = |attrs: &[syn::Attribute]| -> String {
        let all: Vec<syn::Attribute> = attrs.iter().chain(via.iter()).cloned().collect();
        attributes(&all)
    };
    match item {
        syn::Item::Const(c) => line(here, format!("{}pub const {here}: {}", with(&c.attrs), ty(&c.ty))),
        syn::Item::Static(s) => {
            let mutability = if matches!(s.mutability, syn::StaticMutability::Mut(_)) { "mut " } else { "" };
            line(here, format!("{}pub static {mutability}{here}: {}", with(&s.attrs), ty(&s.ty)))
        }
        syn::Item::Type(t) => {
            line(here, format!("{}pub type {here}{} = {}", with(&t.attrs), generics(&t.generics), ty(&t.ty)))
        }
        syn::Item::Fn(f) => line(here, format!("{}pub {}", with(&f.attrs), signature(here, &f.sig))),
        syn::Item::Struct(s) => {
            let private = s.fields.iter().any(|f| !matches!(f.vis, syn::Visibility::Public(_)));
            let private = if private { " (has private fields)" } else { "" };
            let shape = match s.fields {
                syn::Fields::Named(_) => "",
                syn::Fields::Unnamed(_) => " (tuple)",
                syn::Fields::Unit => " (unit)",
            };
            line(here, format!("{}pub struct {here}{}{shape}{private}", with(&s.attrs), generics(&s.generics)));
            for (i, field) in s.fields.iter().enumerate() {
                if matches!(field.vis, syn::Visibility::Public(_)) {
                    let name = field.ident.as_ref().map(|i| i.to_string()).unwrap_or_else(|| i.to_string());
                    let path = format!("{here}::{name}");
                    line(&path, format!("{}pub {path}: {}", attributes(&field.attrs), ty(&field.ty)));
                }
            }
        }
        syn::Item::Union(u) => line(here, format!("{}pub union {here}{}", with(&u.attrs), generics(&u.generics))),
        syn::Item::Enum(e) => {
            line(here, format!("{}pub enum {here}{}", with(&e.attrs), generics(&e.generics)));
            for variant in &e.variants {
                let path = format!("{here}::{}", variant.ident);
                let fields = match &variant.fields {
                    syn::Fields::Unit => String::new(),
                    syn::Fields::Unnamed(fields) => {
                        format!("({})", fields.unnamed.iter().map(|f| ty(&f.ty)).collect::<Vec<_>>().join(", "))
                    }
                    syn::Fields::Named(fields) => format!(
                        " {{ {} }}",
                        fields
                            .named
                            .iter()
                            .map(|f| format!("{}: {}", f.ident.as_ref().unwrap(), ty(&f.ty)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let discriminant = variant
                    .discriminant
                    .as_ref()
                    .map(|(_, e)| format!(" = {}", tidy(&e.to_token_stream().to_string())))
                    .unwrap_or_default();
                line(&path, format!("{}{path}{fields}{discriminant}", attributes(&variant.attrs)));
            }
        }
        syn::Item::Trait(t) => {
            let supertraits = if t.supertraits.is_empty() {
                String::new()
            } else {
                format!(": {}", tidy(&t.supertraits.to_token_stream().to_string()))
            };
            let unsafety = if t.unsafety.is_some() { "unsafe " } else { "" };
            line(here, format!("{}pub {unsafety}trait {here}{}{supertraits}", with(&t.attrs), generics(&t.generics)));
            for inner in &t.items {
                match inner {
                    syn::TraitItem::Fn(f) => {
                        let path = format!("{here}::{}", f.sig.ident);
                        let provided = if f.default.is_some() { " (provided)" } else { "" };
                        line(&path, format!("{}{}{provided}", attributes(&f.attrs), signature(&path, &f.sig)));
                    }
                    syn::TraitItem::Type(t) => {
                        let path = format!("{here}::{}", t.ident);
                        let bounds = if t.bounds.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", tidy(&t.bounds.to_token_stream().to_string()))
                        };
                        line(&path, format!("{}type {path}{bounds}", attributes(&t.attrs)));
                    }
                    syn::TraitItem::Const(c) => {
                        let path = format!("{here}::{}", c.ident);
                        line(&path, format!("{}const {path}: {}", attributes(&c.attrs), ty(&c.ty)));
                    }
                    other => panic!(
                        "the public API listing cannot render `{}` in trait {here}",
                        tidy(&other.to_token_stream().to_string())
                    ),
                }
            }
        }
        syn::Item::TraitAlias(t) => line(here, format!("{}pub trait {here} = ...", with(&t.attrs))),
        syn::Item::Mod(_) | syn::Item::Use(_) | syn::Item::Macro(_) | syn::Item::Impl(_) => {}
        other => panic!("the public API listing cannot render `{}`", tidy(&other.to_token_stream().to_string())),
    }
}

/// An `impl` block of the item reachable at `here`: a trait implementation as one line (the
/// trait's path as written), the public functions and constants of an inherent one each.
fn render_impl(here: &str, imp: &syn::ItemImpl, lines: &mut BTreeSet<(String, String)>) {
    let attrs = attributes(&imp.attrs);
    if let Some((negative, trait_path, _)) = &imp.trait_ {
        let negative = if negative.is_some() { "!" } else { "" };
        let trait_path = tidy(&trait_path.to_token_stream().to_string());
        let generics = generics(&imp.generics);
        lines.insert((here.to_owned(), format!("{attrs}impl{generics} {negative}{trait_path} for {here}")));
        return;
    }
    for inner in &imp.items {
        match inner {
            syn::ImplItem::Fn(f) if matches!(f.vis, syn::Visibility::Public(_)) => {
                let path = format!("{here}::{}", f.sig.ident);
                let mut all = imp.attrs.clone();
                all.extend(f.attrs.iter().cloned());
                lines.insert((path.clone(), format!("{}pub {}", attributes(&all), signature(&path, &f.sig))));
            }
            syn::ImplItem::Const(c) if matches!(c.vis, syn::Visibility::Public(_)) => {
                let path = format!("{here}::{}", c.ident);
                lines.insert((path.clone(), format!("{}pub const {path}: {}", attributes(&c.attrs), ty(&c.ty))));
            }
            _ => {}
        }
    }
}

/// An exported macro and the patterns of its rules.
fn render_macro(here: &str, mac: &syn::ItemMacro, lines: &mut BTreeSet<(String, String)>) {
    let tokens: Vec<proc_macro2::TokenTree> = mac.mac.tokens.clone().into_iter().collect();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let proc_macro2::TokenTree::Group(pattern) = &tokens[i] {
            rules.push(tidy(&pattern.to_string()));
        }
        // pattern, `=`, `>`, body, `;`
        i += 5;
    }
    let attrs = attributes(&mac.attrs);
    lines.insert((here.to_owned(), format!("{attrs}#[macro_export] macro {here}! {}", rules.join(" | "))));
}

fn signature(path: &str, sig: &syn::Signature) -> String {
    let mut qualifiers = String::new();
    if sig.constness.is_some() {
        qualifiers.push_str("const ");
    }
    if sig.asyncness.is_some() {
        qualifiers.push_str("async ");
    }
    if sig.unsafety.is_some() {
        qualifiers.push_str("unsafe ");
    }
    let inputs: Vec<String> = sig.inputs.iter().map(argument).collect();
    let output = match &sig.output {
        syn::ReturnType::Default => String::new(),
        syn::ReturnType::Type(_, t) => format!(" -> {}", ty(t)),
    };
    let where_clause = sig
        .generics
        .where_clause
        .as_ref()
        .map(|w| format!(" {}", tidy(&w.to_token_stream().to_string())))
        .unwrap_or_default();
    format!("{qualifiers}fn {path}{}({}){output}{where_clause}", generics(&sig.generics), inputs.join(", "))
}

/// An argument without what only the body sees (`mut self` → `self`, `mut n: u32` → `n: u32`).
fn argument(arg: &syn::FnArg) -> String {
    match arg {
        syn::FnArg::Receiver(receiver) => match (&receiver.reference, receiver.colon_token.is_some()) {
            (_, true) => format!("self: {}", ty(&receiver.ty)),
            (Some((_, lifetime)), false) => {
                let lifetime = lifetime.as_ref().map(|l| format!("{l} ")).unwrap_or_default();
                let mutability = if receiver.mutability.is_some() { "mut " } else { "" };
                format!("&{lifetime}{mutability}self")
            }
            (None, false) => "self".to_owned(),
        },
        syn::FnArg::Typed(typed) => {
            let pattern = match &*typed.pat {
                syn::Pat::Ident(ident) => ident.ident.to_string(),
                other => tidy(&other.to_token_stream().to_string()),
            };
            format!("{pattern}: {}", ty(&typed.ty))
        }
    }
}

fn generics(generics: &syn::Generics) -> String {
    if generics.params.is_empty() {
        return String::new();
    }
    tidy(&generics.to_token_stream().to_string())
}

fn ty(t: &syn::Type) -> String {
    tidy(&t.to_token_stream().to_string())
}

/// Token text with the spacing of written Rust: `Option < Vec < u8 > >` → `Option<Vec<u8>>`,
/// `& mut self` → `&mut self`, `impl FnOnce () -> R` → `impl FnOnce() -> R`.
fn tidy(tokens: &str) -> String {
    let chars: Vec<char> = tokens.chars().collect();
    let mut out = String::with_capacity(tokens.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let before = out.chars().last().unwrap_or(' ');
            let after = chars.get(i + 1).copied().unwrap_or(' ');
            let next2 = chars.get(i + 2).copied().unwrap_or(' ');
            let drop = matches!(before, '<' | '(' | '[' | '&' | '$' | '#' | '!')
                || matches!(after, '>' | ')' | ']' | ',' | ';' | '?')
                || (after == '<' && !(next2 == '=' || next2 == '<'))
                || (after == ':' && next2 == ':')
                || (before == ':' && out.ends_with("::"))
                || (after == '(' && (before.is_alphanumeric() || before == '_' || before == '>'))
                || (after == ':' && before != ':' && next2 != ':')
                || (after == '\'' && before == '&');
            let keep = before == '>' && after == '(' && out.ends_with("->");
            if drop && !keep {
                continue;
            }
        }
        out.push(c);
    }
    out
}
