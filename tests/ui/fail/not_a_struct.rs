use stratasync_core::SyncModel;

#[derive(SyncModel)]
#[sync(global)]
enum Task {
    A,
}

#[derive(SyncModel)]
#[sync(global)]
struct Tuple(uuid::Uuid, String);

#[derive(SyncModel)]
#[sync(global)]
struct Unit;

fn main() {}
