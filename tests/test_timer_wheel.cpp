// The timer wheel on its own (white-box): entries fire exactly when their tick comes, in
// deadline order, whatever the range of deadlines and however time advances, and the published
// next deadline never lets one be missed.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include "scheduler/timer_wheel.hpp"

using erl::detail::timer_entry;
using erl::detail::timer_wheel;
using clock_type = timer_wheel::clock;

namespace {

struct lcg {
    std::uint64_t state;
    std::uint64_t next() noexcept {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return state >> 11;
    }
    // Log-uniform between 2^lo and 2^hi nanoseconds.
    std::chrono::nanoseconds span(unsigned lo, unsigned hi) noexcept {
        unsigned bits = lo + unsigned(next() % (hi - lo + 1));
        return std::chrono::nanoseconds(std::int64_t(next() & ((std::uint64_t(1) << bits) - 1)) +
                                        1);
    }
};

struct tracked {
    timer_entry entry;
    clock_type::time_point deadline;
    bool removed = false;
    int fired = 0;
    clock_type::time_point fired_at;
    int fired_step = -1;
};

} // namespace

TEST_CASE("the timer wheel fires every entry at the first look after its deadline's tick",
          "[timer][wheel]") {
    for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
        lcg rng{seed};
        timer_wheel wheel;
        auto now = clock_type::now();
        std::vector<tracked> all(4000);
        std::size_t used = 0;
        auto add = [&](clock_type::time_point deadline) {
            tracked& t = all[used++];
            t.deadline = deadline;
            wheel.insert(&t.entry, deadline);
        };
        // Deadlines from a microsecond to about 30 years ahead.
        for (int i = 0; i < 2000; ++i)
            add(now + rng.span(10, 60));
        std::vector<timer_entry*> due;
        // Counted rather than REQUIREd one by one: millions of checks.
        int bound_late = 0, fired_twice = 0, fired_early = 0, fired_late = 0, missed = 0,
            out_of_order = 0;
        const auto far_enough = clock_type::duration(std::int64_t(1) << 61);
        for (int step = 0; step < 3000; ++step) {
            // Steps of a few microseconds to years; sometimes none at all.
            auto previous = now;
            bool big = step % 5 == 0 && now.time_since_epoch() < far_enough;
            if (step % 17 != 0) now += rng.span(12, big ? 56 : 30);
            // The published bound is never after a pending entry's tick.
            for (std::size_t i = 0; i < used; ++i) {
                if (!all[i].entry.queued()) continue;
                auto tick_start = clock_type::time_point(clock_type::duration(std::int64_t(
                    timer_wheel::tick_due(all[i].deadline) << timer_wheel::tick_shift)));
                bound_late += wheel.next_deadline() > tick_start;
            }
            due.clear();
            wheel.expire(now, [&](timer_entry* e) { due.push_back(e); });
            for (std::size_t k = 1; k < due.size(); ++k)
                out_of_order += due[k - 1]->deadline > due[k]->deadline;
            for (timer_entry* e : due) {
                auto* t = reinterpret_cast<tracked*>(e); // the entry is the first member
                ++t->fired;
                t->fired_at = now;
                t->fired_step = step;
            }
            // Fired now: due now and not at the previous look; pending: not due yet.
            for (std::size_t i = 0; i < used; ++i) {
                tracked& t = all[i];
                if (t.removed) continue;
                auto due_tick = timer_wheel::tick_due(t.deadline);
                if (t.fired) {
                    fired_twice += t.fired > 1;
                    fired_early += t.fired_at < t.deadline;
                    fired_late +=
                        t.fired_step == step && timer_wheel::tick_of(previous) >= due_tick;
                } else {
                    missed += !t.entry.queued() || timer_wheel::tick_of(now) >= due_tick;
                }
            }
            // Now and then: remove a pending entry, add a new one ahead of now.
            if (step % 3 == 0) {
                tracked& t = all[std::size_t(rng.next() % used)];
                if (t.entry.queued()) {
                    REQUIRE(wheel.remove(&t.entry));
                    t.removed = true;
                    REQUIRE_FALSE(wheel.remove(&t.entry));
                }
            }
            if (used < all.size() && step % 2 == 0) add(now + rng.span(10, step % 7 ? 30 : 60));
        }
        CHECK(bound_late == 0);
        CHECK(fired_twice == 0);
        CHECK(fired_early == 0);
        CHECK(fired_late == 0);
        CHECK(missed == 0);
        CHECK(out_of_order == 0);
        int fired = 0;
        for (std::size_t i = 0; i < used; ++i)
            fired += all[i].fired;
        CHECK(fired > 1000); // the walk reached most deadlines
    }
}

TEST_CASE("a timer wheel entry already due fires by the next tick", "[timer][wheel]") {
    timer_wheel wheel;
    timer_entry keep;
    auto now = clock_type::now();
    wheel.insert(&keep, now + std::chrono::hours(1));
    std::vector<timer_entry*> due;
    auto look = [&](clock_type::time_point at) {
        wheel.expire(at, [&](timer_entry* e) { due.push_back(e); });
    };
    for (int i = 0; i < 3; ++i) {
        due.clear();
        look(now);
        timer_entry past, present;
        wheel.insert(&past, now - std::chrono::seconds(5));
        wheel.insert(&present, now);
        // At once if the wheel has not finished this tick yet, else at the next one.
        look(now);
        look(now + std::chrono::nanoseconds(std::int64_t(1) << timer_wheel::tick_shift));
        CHECK(due.size() == 2);
        CHECK_FALSE(past.queued());
        CHECK_FALSE(present.queued());
        now += std::chrono::milliseconds(1);
    }
    CHECK(wheel.remove(&keep));
    CHECK(wheel.next_deadline() == clock_type::time_point::max());
}
