// kvalues_iq4nl[n]: a byte load from the tables per weight. (Holding the 16 values in four
// words and picking one by index measured a third of the speed on an H200: a dynamically
// indexed vector per weight.)
fn kv(n: u32) -> f32 {
    return sx8(tb8(KVALUES_IQ4NL + n));
}
