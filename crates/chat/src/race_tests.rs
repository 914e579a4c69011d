//! Requests that meet on one conversation: the next message sent the moment a reply is seen
//! saved, while the model-written title of the first exchange is being applied.

use crate::tests::{fast, fixture, new, recorder, wait_end, wait_title};
use crate::*;
use localglm_engine::scripted::Script;

#[tokio::test]
async fn a_message_sent_as_soon_as_the_reply_is_saved_is_taken_and_kept_beside_the_title() {
    let f = fixture(|r| {
        if r.messages[0].content == localglm_engine::TITLE_INSTRUCTION {
            let asked = r.messages[1]
                .content
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            return Script {
                content: Script::tokens(&format!("Title: Named {asked}")),
                ..fast(r)
            };
        }
        fast(r)
    })
    .await;
    for i in 0..15 {
        let conv = f.service.create(None).unwrap();
        let (first, sink) = recorder();
        f.service
            .send(
                new(&conv.id, &format!("question {i}")),
                &Settings::default(),
                sink,
            )
            .await
            .unwrap();
        // What a client polling the file sees: the reply saved. It may send at once.
        while f.service.get(&conv.id).unwrap().messages.len() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (second, sink) = recorder();
        f.service
            .send(new(&conv.id, "and then?"), &Settings::default(), sink)
            .await
            .expect("a saved reply leaves the conversation free");
        wait_end(&first).await;
        wait_end(&second).await;
        // The title (written while the second message was being saved and answered) and
        // the second exchange are both kept.
        wait_title(&f, &conv.id, &format!("Named question {i}")).await;
        let view = f.service.get(&conv.id).unwrap();
        assert_eq!(view.messages.len(), 4, "round {i}");
        assert_eq!(view.messages[2].message.content, "and then?");
    }
}
