//! The cases where planners go wrong: keys that are not one column, tables without a
//! key, identity and generated columns, renames together with a type change, several
//! operations on one table, operations that use what an earlier one created.

use super::support::case;

#[test]
fn composite_key_alter_column_type() {
    assert_plan!(case(
        "composite_key",
        "composite_key_alter_column_type.yaml"
    ));
}

/// Refused: a primary-key column.
#[test]
fn composite_key_alter_key_column() {
    assert_plan!(
        case("composite_key", "composite_key_alter_key_column.yaml"),
        error
    );
}

#[test]
fn composite_key_add_column_with_up() {
    assert_plan!(case(
        "composite_key",
        "composite_key_add_column_with_up.yaml"
    ));
}

#[test]
fn keyless_add_column() {
    assert_plan!(case("keyless", "keyless_add_column.yaml"));
}

#[test]
fn keyless_add_column_with_up() {
    assert_plan!(case("keyless", "keyless_add_column_with_up.yaml"));
}

#[test]
fn keyless_alter_column_type() {
    assert_plan!(case("keyless", "keyless_alter_column_type.yaml"));
}

/// `settings` has a UNIQUE NOT NULL column but no primary key.
#[test]
fn keyless_unique_only_set_not_null() {
    assert_plan!(case("keyless", "keyless_unique_only_set_not_null.yaml"));
}

#[test]
fn identity_add_column_with_up() {
    assert_plan!(case("identity", "identity_add_column_with_up.yaml"));
}

/// int -> bigint of a serial key, the usual reason for a type change: refused (primary key).
#[test]
fn identity_alter_serial_type() {
    assert_plan!(case("identity", "identity_alter_serial_type.yaml"), error);
}

/// `title_lower` is generated from `title`: complete's `DROP COLUMN title` would fail
/// while it depends on it, so the planner refuses, naming the generated column.
#[test]
fn identity_alter_generated_source() {
    assert_plan!(
        case("identity", "identity_alter_generated_source.yaml"),
        error
    );
}

#[test]
fn identity_drop_generated_column() {
    assert_plan!(case("identity", "identity_drop_generated_column.yaml"));
}

#[test]
fn rename_and_type_change() {
    assert_plan!(case("shop", "rename_and_type_change.yaml"));
}

/// `users.id` is referenced by `orders.user_id` (refused: it is the primary key).
#[test]
fn alter_column_type_referenced_key() {
    assert_plan!(case("shop", "alter_column_type_referenced_key.yaml"), error);
}

/// `users.email` has a UNIQUE constraint and a unique expression index.
#[test]
fn alter_column_type_unique_indexed() {
    assert_plan!(case("shop", "alter_column_type_unique_indexed.yaml"));
}

#[test]
fn several_operations_one_table() {
    assert_plan!(case("shop", "several_operations_one_table.yaml"));
}

/// The index (op 3) and foreign key (op 4) made on `coupon_code` would not be carried to
/// the duplicate op 5 adds (complete's `DROP COLUMN` would drop them silently): refused,
/// naming the index.
#[test]
fn refers_to_earlier_operations() {
    assert_plan!(case("shop", "refers_to_earlier_operations.yaml"), error);
}

/// rename_column, then a type change of the renamed column: complete drops
/// `amount_cents` (replaced by the duplicate), so op 1's rename of it must not run; the
/// duplicate takes the new name.
#[test]
fn rename_table_then_alter() {
    assert_plan!(case("shop", "rename_table_then_alter.yaml"));
}

/// rename_column, then drop_column of the renamed column: no rename of the dropped
/// column is left in complete.
#[test]
fn rename_then_drop_column() {
    assert_plan!(case("shop", "rename_then_drop_column.yaml"));
}

/// With `completes_at_once`, a `down` naming a column the new version lacks is a
/// warning (no new-version write can happen before complete); without, an error
/// (`errors::down_refers_to_old_name`).
#[test]
fn down_refers_to_old_name_completing_at_once() {
    assert_plan!(case("shop", "down_refers_to_old_name.yaml").completing_at_once());
}

/// The first migration: no previous version schema to drop at complete.
#[test]
fn first_migration_create_table() {
    assert_plan!(case("empty", "create_table_in_empty_schema.yaml").without_previous());
}

/// The previous version schema is the one this migration would create: not dropped.
#[test]
fn previous_version_schema_is_this_one() {
    assert_plan!(case("shop", "add_column_nullable.yaml").after("public_add_column_nullable"));
}

/// The whole `Plan` as JSON (what `start` stores in the state schema) for two cases, so
/// that fields the text leaves out (the mapping's every entry, the pair's column names)
/// are under test too.
#[test]
fn add_column_with_up_json() {
    let plan = case("shop", "add_column_with_up.yaml").plan().unwrap();
    insta::assert_json_snapshot!(plan);
}

#[test]
fn rename_and_type_change_json() {
    let plan = case("shop", "rename_and_type_change.yaml").plan().unwrap();
    insta::assert_json_snapshot!(plan);
}
