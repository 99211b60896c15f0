// The intrusive slab lists of the cache's hints (see hints.hpp).
#include "cache/hints.hpp"

namespace pmalloc::internal {

void SlabQueue::push(SlabHint* s, SlabList which) noexcept {
  s->prev = nullptr;
  s->next = head_;
  if (head_ != nullptr) head_->prev = s;
  head_ = s;
  s->list = which;
  ++size_;
}

void SlabQueue::remove(SlabHint* s) noexcept {
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    head_ = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  s->list = SlabList::none;
  --size_;
}

}  // namespace pmalloc::internal
