"""Lesson 1: Setup: meet a real GPT."""
import streamlit as st

import ui

ui.page_setup()
ui.lesson_header(1, "Setup: meet a real GPT", "This lesson is being built.")
