use stratasync_core::SyncModel;

#[derive(SyncModel)]
#[sync(group = global)]
enum Task {
    A,
}

#[derive(SyncModel)]
#[sync(group = global)]
struct Tuple(uuid::Uuid, String);

#[derive(SyncModel)]
#[sync(group = global)]
struct Unit;

fn main() {}
