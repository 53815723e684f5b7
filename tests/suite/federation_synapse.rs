//! Federation with a real Synapse on loopback: each server fetches the
//! other's keys, signs its requests with X-Matrix and checks the other's.

use crate::common::synapse::Synapse;
use crate::common::{enc, set_displayname, start_federated, Raw, V3};
use crate::federation::{check_remote_directory, public_room};

#[tokio::test]
async fn synapse_and_matrix_os_see_each_others_profiles() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    set_displayname(&alice, &alice_id, "Alice on Matrix OS").await;
    let (sam, sam_id) = synapse.register("sam").await;
    set_displayname(&sam, &sam_id, "Sam on Synapse").await;

    // Synapse asks us: it fetches our key and we check its signature.
    let (status, profile) = sam
        .call("GET", &format!("{V3}/profile/{}", enc(&alice_id)), None)
        .await;
    assert_eq!(status, 200, "{profile}\n{}", synapse.log_tail());
    assert_eq!(profile["displayname"], "Alice on Matrix OS");

    // We ask Synapse: it fetches our key to check ours.
    let (status, profile) = alice
        .call("GET", &format!("{V3}/profile/{}", enc(&sam_id)), None)
        .await;
    assert_eq!(status, 200, "{profile}\n{}", synapse.log_tail());
    assert_eq!(profile["displayname"], "Sam on Synapse");
    assert_eq!(synapse.server_name, sam_id.split_once(':').unwrap().1);
}

#[tokio::test]
async fn synapse_and_matrix_os_find_rooms_in_each_others_directory() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (sam, _) = synapse.register("sam").await;
    let (our_room, our_alias) = public_room(&alice, &ours_name, "garden").await;
    let (their_room, their_alias) = public_room(&sam, &synapse.server_name, "harbour").await;

    check_remote_directory(&sam, &ours_name, &our_room, &our_alias, "garden").await;
    check_remote_directory(
        &alice,
        &synapse.server_name,
        &their_room,
        &their_alias,
        "harbour",
    )
    .await;
}
